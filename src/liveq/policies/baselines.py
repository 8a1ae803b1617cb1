"""Non-learning baselines: random, popular-now, repeat-favourite and the one-step oracle.

They act on the LiveStream observation only (the oracle also reads the simulator's hidden
state, which is what makes it an upper bound for one-step policies). Each returns ranked
slates when the env's `slate_size` is above 1. Build them by name with `make_baseline`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import gymnasium as gym
import numpy as np

from liveq.core.errors import ConfigError
from liveq.policies.ads import AD_BASELINES
from liveq.policies.base import (
    Action,
    GreedyPolicy,
    action_mask,
    masked_uniform,
    uniform_probabilities,
    uniform_slate_probability,
    valid_slates,
)
from liveq.policies.room_baselines import ROOM_BASELINES
from liveq.sim.candidates import CANDIDATE_FEATURES
from liveq.sim.oracle import expected_immediate_reward

VIEWERS = CANDIDATE_FEATURES.index("log_viewers")
HISTORY = CANDIDATE_FEATURES.index("history_minutes")


def slate_size_of(env: gym.vector.VectorEnv) -> int:
    space = env.single_action_space
    return 1 if isinstance(space, gym.spaces.Discrete) else len(space.nvec)


class RandomPolicy:
    """Uniformly random ordered slates of distinct live candidates."""

    def __init__(self, slate_size: int, seed: int | None = None):
        self.slate_size, self.rng = slate_size, np.random.default_rng(seed)

    def allowed(self, obs, mask=None) -> np.ndarray:
        return action_mask(obs, mask, obs["candidates"].shape[1])

    def act(self, obs, mask=None) -> Action:
        return masked_uniform(self.allowed(obs, mask), self.slate_size, self.rng)

    def probabilities(self, obs, mask=None) -> np.ndarray:
        return uniform_probabilities(self.allowed(obs, mask), self.slate_size)

    def slate_probability(self, obs, slates, mask=None) -> np.ndarray:
        allowed = self.allowed(obs, mask)
        return (uniform_slate_probability(allowed.sum(axis=1), self.slate_size)
                * valid_slates(slates, allowed))


class ScorePolicy(GreedyPolicy):
    """Ranks candidates by a score computed from the observation (ties: lower index)."""

    def __init__(self, score: Callable[[dict], np.ndarray], slate_size: int):
        self.score, self.slate_size = score, slate_size

    def scores(self, obs, mask=None) -> np.ndarray:
        return np.where(self.allowed(obs, mask), self.score(obs), -np.inf)


def popular_score(obs: dict) -> np.ndarray:
    """Most live viewers now."""
    return obs["candidates"][:, :, VIEWERS].astype(np.float64)


def repeat_score(obs: dict) -> np.ndarray:
    """The live streamer this viewer watched most; popularity breaks ties and fills in."""
    history = obs["candidates"][:, :, HISTORY].astype(np.float64)
    return history * 100.0 + popular_score(obs)


class OracleMyopicPolicy(GreedyPolicy):
    """Greedy on the simulator's true expected immediate reward (reads hidden state, so
    it scores the env's current states whatever `obs` is passed)."""

    def __init__(self, env: gym.vector.VectorEnv):
        core = getattr(env.unwrapped, "core", None)
        if core is None:
            raise ValueError("the oracle-myopic baseline needs a liveq LiveStream env")
        self.core, self.slate_size = core, slate_size_of(env)

    def scores(self, obs, mask=None) -> np.ndarray:
        return np.where(self.allowed(obs, mask), expected_immediate_reward(self.core),
                        -np.inf)


BASELINES: dict[str, Callable[[gym.vector.VectorEnv, int], object]] = {
    "random": lambda env, seed: RandomPolicy(slate_size_of(env), seed),
    "popular": lambda env, seed: ScorePolicy(popular_score, slate_size_of(env)),
    "repeat": lambda env, seed: ScorePolicy(repeat_score, slate_size_of(env)),
    "oracle": lambda env, seed: OracleMyopicPolicy(env),
    **ROOM_BASELINES,
    **AD_BASELINES,  # greedy_ecpm, even_pacing, budget_aware: liveq/AdPlacement only
}


def baseline_fits(name: str, env_id: str) -> bool:
    """Whether baseline `name` can act on env `env_id` (live-room rules on LiveRoom, ad rules
    on AdPlacement, the others on LiveStream)."""
    if name in ROOM_BASELINES:
        return env_id.startswith("liveq/LiveRoom")
    if name in AD_BASELINES:
        return env_id.startswith("liveq/AdPlacement")
    return env_id.startswith("liveq/LiveStream")


def make_baseline(name: str, env: gym.vector.VectorEnv, seed: int | None = None):
    """A baseline policy acting on `env` (the oracle reads that env's hidden state)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline '{name}'; choose from {sorted(BASELINES)}")
    return BASELINES[name](env, seed)


def policy_and_epsilon(text: str, names: Iterable[str], what: str) -> tuple[str, float]:
    """`"popular:0.3"` -> ("popular", 0.3), `"oracle"` -> ("oracle", 0.0); the name must be
    one of `names`; `what` (the option or field) leads every error message."""
    name, _, eps = text.strip().partition(":")
    if name not in names:
        raise ConfigError(f"{what}: unknown policy {name!r} in {text!r}; choose from "
                          f"{sorted(names)} (NAME or NAME:EPSILON)")
    try:
        epsilon = float(eps) if eps else 0.0
    except ValueError:
        raise ConfigError(f"{what} {text!r}: epsilon {eps!r} is not a number") from None
    if not 0.0 <= epsilon <= 1.0:
        raise ConfigError(f"{what} {text!r}: epsilon must be in [0, 1], got {epsilon}")
    return name, epsilon
