"""A trained run loaded for serving, without the simulator.

`load_model(run)` reads the run folder's `config.yaml` and `checkpoints/best.pt`, checks
them as `liveq.train.restore` does (parts present, finite weights, config.yaml not edited
after training), derives the observation space from `liveq.features`' schema and the run's
`env.kwargs` (topic_dim, n_candidates), builds the learner through the algorithm
registry and keeps its frozen greedy policy (a run trained for slates, e.g. `liveq learn
--learner slateq`, too: its scores put its best list of `slate_size` first).
`serving_policy` wraps that policy, ranked to the `k` items a request asks for, in the one
exploration wrapper the toolkit has, so every decision comes with exact probabilities.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from liveq.core.errors import CheckpointError
from liveq.features.schema import CANDIDATE_FEATURES, viewer_width
from liveq.policies.base import GreedyPolicy, Obs, Policy
from liveq.policies.explore import EpsilonGreedy, Softmax
from liveq.serving.fast_scores import Scorer, fast_scores
from liveq.serving.settings import FeatureSettings
from liveq.train.checkpoint import load_learner_checkpoint
from liveq.train.config import RunConfig, load_run_config, saved_config_changes
from liveq.train.registry import build_learner

FEATURE_BOUND = 100.0  # the simulator's observation bound (loose; the network ignores it)
SERVED_ENV = "liveq/LiveStream-v0"


@dataclass
class ServedModel:
    """A model ready to score candidate tables."""

    version: str  # run folder name and the checkpoint's hash
    run_path: str
    settings: FeatureSettings
    greedy: Any  # the learner's frozen greedy policy (has `scores`)
    agent_name: str
    scores: Scorer  # `greedy.scores`, in numpy where it can be (`fast_scores`)


def observation_space(settings: FeatureSettings) -> spaces.Dict:
    """The `Dict` space of the LiveStream observation for these settings."""
    k = settings.n_candidates
    bound = max(FEATURE_BOUND, 2.0 / (1.0 - settings.fatigue_decay + 1e-6))
    return spaces.Dict({
        "viewer": spaces.Box(-bound, bound, (viewer_width(settings.topic_dim),), np.float32),
        "candidates": spaces.Box(-bound, bound, (k, len(CANDIDATE_FEATURES)), np.float32),
        "mask": spaces.MultiBinary(k),
    })


def checkpoint_path(run: str | Path) -> Path:
    return Path(run) / "checkpoints" / "best.pt"


def model_version(run: str | Path) -> str:
    """`<run folder name>-<first 10 hex digits of best.pt's SHA-256>`."""
    path = checkpoint_path(run)
    if not path.is_file():
        raise CheckpointError(f"{run}: no checkpoint at {path} (is it a run folder "
                              "written by `liveq train`?)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return f"{Path(run).resolve().name}-{digest}"


def _run_config(run: Path) -> RunConfig:
    path = run / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run}: no config.yaml (is it a run folder written by "
                              "`liveq train`?)")
    config = load_run_config(path)
    if config.env.id != SERVED_ENV:
        raise CheckpointError(f"{run}: trained on {config.env.id}; the service serves "
                              f"models of {SERVED_ENV}")
    return config


def load_model(run: str | Path) -> ServedModel:
    """The run's best checkpoint as a `ServedModel`; a `CheckpointError` or `ConfigError`
    says what is wrong with the folder."""
    run = Path(run)
    config = _run_config(run)
    settings = FeatureSettings.from_env_kwargs(config.env.kwargs)
    path = checkpoint_path(run)
    checkpoint = load_learner_checkpoint(path, "serving a model")
    edited = saved_config_changes(checkpoint, config, path)
    if edited:
        raise CheckpointError(f"{run / 'config.yaml'} was edited after training: "
                              + "; ".join(edited))
    slate = int(config.env.kwargs.get("slate_size", 1))  # a slate model (slateq) is
    actions = (spaces.Discrete(settings.n_candidates) if slate == 1  # ranked by its scores
               else spaces.MultiDiscrete([settings.n_candidates] * slate))
    learner = build_learner(config.agent.name, observation_space(settings), actions,
                            config.agent.settings, config.seed)
    try:
        learner.load_state_dict(checkpoint["agent"])
    except (KeyError, TypeError, ValueError, CheckpointError) as exc:
        raise CheckpointError(f"{path}: the agent state does not fit agent "
                              f"'{config.agent.name}' ({exc})") from None
    greedy = learner.greedy_policy(frozen=True)
    if not callable(getattr(greedy, "scores", None)):
        raise CheckpointError(f"{run}: agent '{config.agent.name}' has no scores to rank by")
    return ServedModel(model_version(run), str(run.resolve()), settings, greedy,
                       config.agent.name, fast_scores(greedy))


class RankedGreedy(GreedyPolicy):
    """`base`'s scores (computed by `score`, `base.scores` or its numpy twin) ranked into
    the top `slate_size` (the k items a request asks for).

    One is built per decision, which asks for the scores of one observation three times
    (to act, for the probabilities, for the log): the network runs once, and a mask only
    sets the entries it forbids to -inf, as the policy contract's `scores` does.
    """

    def __init__(self, base: Any, slate_size: int, score: Scorer | None = None):
        self.base, self.slate_size = base, slate_size
        self.score = base.scores if score is None else score
        self._memo: tuple[Obs, np.ndarray] | None = None

    def allowed(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        return self.base.allowed(obs, mask)

    def scores(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        if self._memo is None or self._memo[0] is not obs:
            self._memo = (obs, self.score(obs))
        return np.where(self.allowed(obs, mask), self._memo[1], -np.inf)


def serving_policy(model: ServedModel, k: int, exploration: dict[str, Any],
                   rng: np.random.Generator) -> Policy:
    """The policy a decision is drawn from: the model's greedy ranking of `k` items inside
    epsilon-greedy or softmax exploration (`exploration` as `ServeConfig.exploration`)."""
    base = RankedGreedy(model.greedy, k, model.scores)
    if exploration["kind"] == "softmax":
        return Softmax(base, exploration["temperature"], rng)
    return EpsilonGreedy(base, exploration["epsilon"], rng)
