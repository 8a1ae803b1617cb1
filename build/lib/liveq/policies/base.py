"""What every agent shares: a `Policy` acts, a learner updates; they never touch the env.

Observations arrive batched (first axis = environment index). Two kinds are supported:

* a plain array `(n_envs, obs_dim)` for Box-observation envs such as CartPole-v1;
* the LiveStream dict `{"viewer": (n_envs, viewer_dim), "candidates": (n_envs, K, cand_dim),
  "mask": (n_envs, K)}` where `mask[i, k] == 1` means candidate `k` may be recommended.

`act` returns the chosen actions, `(n_envs,)` for a single recommendation or
`(n_envs, slate_size)` for a ranked list, and the probability with which the policy chose
exactly that action (its propensity), which off-policy evaluation and the decision log need.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np

Obs = Any  # np.ndarray or dict[str, np.ndarray], batched


class Action(NamedTuple):
    actions: np.ndarray  # (n_envs,) or (n_envs, slate_size) int64
    propensities: np.ndarray  # (n_envs,) float64, probability of the chosen action


class Policy(Protocol):
    """Chooses actions; holds no learning state it would change while acting."""

    def act(self, obs: Obs, mask: np.ndarray | None = None) -> Action: ...


def action_mask(obs: Obs, mask: np.ndarray | None, n_actions: int) -> np.ndarray:
    """Boolean `(n_envs, n_actions)` mask: the explicit one, else `obs["mask"]`, else all."""
    if mask is not None:
        return np.asarray(mask, dtype=bool)
    if isinstance(obs, dict) and "mask" in obs:
        return np.asarray(obs["mask"], dtype=bool)
    n_envs = len(obs["viewer"]) if isinstance(obs, dict) else len(obs)
    return np.ones((n_envs, n_actions), dtype=bool)


def masked_uniform(mask: np.ndarray, slate_size: int, rng: np.random.Generator) -> Action:
    """Uniformly random ordered slates of distinct allowed actions, with propensities."""
    scores = np.where(mask, rng.random(mask.shape), -np.inf)
    actions = top_k_slate(scores, slate_size).actions
    return Action(actions, uniform_slate_probability(mask.sum(axis=1), slate_size))


def top_k_slate(scores: np.ndarray, slate_size: int) -> Action:
    """Deterministic top-`slate_size` by `scores` (masked entries must be -inf).

    Returns `(n_envs,)` actions when `slate_size == 1`, else `(n_envs, slate_size)`;
    propensity 1 because the choice is deterministic given the scores.
    """
    n_envs = scores.shape[0]
    if slate_size == 1:
        actions = np.argmax(scores, axis=1)
    else:
        part = np.argpartition(-scores, slate_size - 1, axis=1)[:, :slate_size]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        actions = np.take_along_axis(part, order, axis=1)
    return Action(actions.astype(np.int64), np.ones(n_envs))


def uniform_slate_probability(n_allowed: np.ndarray, slate_size: int) -> np.ndarray:
    """Probability of one particular ordered slate under uniform sampling without replacement."""
    prob = np.ones(n_allowed.shape, dtype=np.float64)
    for j in range(slate_size):
        prob /= np.maximum(n_allowed - j, 1)
    return prob
