"""Non-learning baselines: random, popular-now, repeat-favourite and the one-step oracle.

They act on the LiveStream observation only (the oracle also reads the simulator's hidden
state, which is what makes it an upper bound for one-step policies). Each returns ranked
slates when the env's `slate_size` is above 1. Build them by name with `make_baseline`.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from liveq.policies.base import Action, action_mask, masked_uniform, top_k_slate
from liveq.sim.candidates import CANDIDATE_FEATURES
from liveq.sim.oracle import expected_immediate_reward

VIEWERS = CANDIDATE_FEATURES.index("log_viewers")
HISTORY = CANDIDATE_FEATURES.index("history_minutes")


def slate_size_of(env: gym.vector.VectorEnv) -> int:
    space = env.single_action_space
    return 1 if isinstance(space, gym.spaces.Discrete) else len(space.nvec)


class RandomPolicy:
    """Uniformly random live candidates."""

    def __init__(self, slate_size: int, seed: int | None = None):
        self.slate_size, self.rng = slate_size, np.random.default_rng(seed)

    def act(self, obs, mask=None) -> Action:
        allowed = action_mask(obs, mask, obs["candidates"].shape[1])
        return masked_uniform(allowed, self.slate_size, self.rng)


class ScorePolicy:
    """Ranks candidates by a score computed from the observation (ties: lower index)."""

    def __init__(self, score: Callable[[dict], np.ndarray], slate_size: int):
        self.score, self.slate_size = score, slate_size

    def act(self, obs, mask=None) -> Action:
        allowed = action_mask(obs, mask, obs["candidates"].shape[1])
        return top_k_slate(np.where(allowed, self.score(obs), -np.inf), self.slate_size)


def popular_score(obs: dict) -> np.ndarray:
    """Most live viewers now."""
    return obs["candidates"][:, :, VIEWERS].astype(np.float64)


def repeat_score(obs: dict) -> np.ndarray:
    """The live streamer this viewer watched most; popularity breaks ties and fills in."""
    history = obs["candidates"][:, :, HISTORY].astype(np.float64)
    return history * 100.0 + popular_score(obs)


class OracleMyopicPolicy:
    """Greedy on the simulator's true expected immediate reward (reads hidden state)."""

    def __init__(self, env: gym.vector.VectorEnv):
        core = getattr(env.unwrapped, "core", None)
        if core is None:
            raise ValueError("the oracle-myopic baseline needs a liveq LiveStream env")
        self.core, self.slate_size = core, slate_size_of(env)

    def act(self, obs, mask=None) -> Action:
        return top_k_slate(expected_immediate_reward(self.core), self.slate_size)


BASELINES: dict[str, Callable[[gym.vector.VectorEnv, int], object]] = {
    "random": lambda env, seed: RandomPolicy(slate_size_of(env), seed),
    "popular": lambda env, seed: ScorePolicy(popular_score, slate_size_of(env)),
    "repeat": lambda env, seed: ScorePolicy(repeat_score, slate_size_of(env)),
    "oracle": lambda env, seed: OracleMyopicPolicy(env),
}


def make_baseline(name: str, env: gym.vector.VectorEnv, seed: int | None = None):
    """A baseline policy acting on `env` (the oracle reads that env's hidden state)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline '{name}'; choose from {sorted(BASELINES)}")
    return BASELINES[name](env, seed)
