"""The Policy contract: a policy chooses actions and can say how likely each one was.

Observations arrive batched (first axis = environment index). Three kinds are supported:

* a plain array `(n_envs, obs_dim)` for Box-observation envs such as CartPole-v1;
* the LiveStream dict `{"viewer": (n_envs, viewer_dim), "candidates": (n_envs, K, cand_dim),
  "mask": (n_envs, K)}` where `mask[i, k] == 1` means candidate `k` may be recommended;
* a `(n_envs,)` integer array of state indices for tabular agents (e.g. `liveq/Chain-v0`).

Every policy has a `slate_size` and answers (`mask`, when given, overrides `obs["mask"]`):

* `allowed(obs, mask=None) -> (n_envs, K) bool`: the candidates it may choose;
* `act(obs, mask=None) -> Action`: the chosen actions, `(n_envs,)` for a single
  recommendation or `(n_envs, slate_size)` for a ranked list, and the exact probability
  with which the policy chose exactly that action (its propensity);
* `probabilities(obs, mask=None) -> np.ndarray`: the full action distribution. With
  `slate_size == 1` it is `(n_envs, K)`: row `i` sums to 1 over the allowed candidates
  and is exactly 0 on masked ones. With `slate_size > 1` it holds the per-rank marginals
  `(n_envs, slate_size, K)`: entry `[i, r, k]` is the probability that candidate `k` is
  shown at rank `r`; each rank row sums to 1 over the allowed candidates. Marginals do
  not determine a slate's probability, so policies also answer
* `slate_probability(obs, slates, mask=None) -> (n_envs,)`: the exact probability of the
  given actions (`(n_envs,)` or ordered `(n_envs, slate_size)`), equal to `act`'s
  propensity for the action it chose.

A row may allow fewer candidates than `slate_size` (a viewer with few live streamers) or
none at all (a session that is restarting). Every policy then fills the ranks it cannot
fill with the masked candidates in index order (`top_k_slate` on -inf scores), which the
env shows as empty ranks under `invalid_action="empty"`; that fill is deterministic. The
per-rank rows of such ranks are all 0 (no allowed candidate can be there), and
`slate_probability` gives the slate's probability with the fill counted as certain.

Deterministic policies that rank by a score expose `scores(obs, mask=None)` `(n_envs, K)`
with -inf on masked candidates; they choose `top_k_slate` of those scores (ties go to the
lowest index), so their distribution is one-hot there. `GreedyPolicy` derives `act`,
`probabilities` and `slate_probability` from `scores`; the exploration wrappers in
`liveq.policies.explore` turn any of them into stochastic policies.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple, Protocol

import numpy as np

Obs = Any  # np.ndarray or dict[str, np.ndarray], batched


class Action(NamedTuple):
    actions: np.ndarray  # (n_envs,) or (n_envs, slate_size) int64
    propensities: np.ndarray  # (n_envs,) float64, probability of the chosen action


class Policy(Protocol):
    """Chooses actions; holds no learning state it would change while acting."""

    slate_size: int

    def allowed(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        """`(n_envs, K)` bool: the candidates this policy may choose."""
        ...

    def act(self, obs: Obs, mask: np.ndarray | None = None) -> Action: ...

    def probabilities(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray: ...

    def slate_probability(self, obs: Obs, slates: np.ndarray,
                          mask: np.ndarray | None = None) -> np.ndarray: ...


class ScoringPolicy(Policy, Protocol):
    """A deterministic policy that ranks candidates by a score (the exploration wrappers'
    base)."""

    def scores(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray: ...


def action_mask(obs: Obs, mask: np.ndarray | None, n_actions: int) -> np.ndarray:
    """Boolean `(n_envs, n_actions)` mask: the explicit one, else `obs["mask"]`, else all."""
    if mask is not None:
        return np.asarray(mask, dtype=bool)
    if isinstance(obs, dict) and "mask" in obs:
        return np.asarray(obs["mask"], dtype=bool)
    n_envs = len(obs["viewer"]) if isinstance(obs, dict) else len(obs)
    return np.ones((n_envs, n_actions), dtype=bool)


def masked_uniform(mask: np.ndarray, slate_size: int, rng: np.random.Generator) -> Action:
    """Uniformly random ordered slates of distinct allowed actions, with propensities.

    Draws exactly `rng.random(mask.shape)`: callers rely on that to stay reproducible.
    """
    scores = np.where(mask, rng.random(mask.shape), -np.inf)
    actions = top_k_slate(scores, slate_size).actions
    return Action(actions, uniform_slate_probability(mask.sum(axis=1), slate_size))


def top_k_slate(scores: np.ndarray, slate_size: int) -> Action:
    """Deterministic top-`slate_size` by `scores` (masked entries must be -inf).

    Ties go to the lowest index, so ranks beyond the allowed candidates hold the masked
    ones in index order. Returns `(n_envs,)` actions when `slate_size == 1`, else
    `(n_envs, slate_size)`; propensity 1 because the choice is deterministic.
    """
    n_envs = scores.shape[0]
    if slate_size == 1:
        actions = np.argmax(scores, axis=1)
    else:
        actions = np.argsort(-scores, axis=1, kind="stable")[:, :slate_size]
    return Action(actions.astype(np.int64), np.ones(n_envs))


def uniform_slate_probability(n_allowed: np.ndarray, slate_size: int,
                              mass: float = 1.0) -> np.ndarray:
    """`mass` times the probability of one ordered slate under uniform sampling without
    replacement from `n_allowed` candidates (ranks beyond them are the certain fill)."""
    prob = np.full(n_allowed.shape, mass, dtype=np.float64)
    for j in range(slate_size):
        prob /= np.maximum(n_allowed - j, 1)
    return prob


def as_slates(actions: np.ndarray) -> np.ndarray:
    """`(n_envs, slate_size)` int64 view of `(n_envs,)` or `(n_envs, slate_size)` actions."""
    actions = np.asarray(actions, dtype=np.int64)
    return actions[:, None] if actions.ndim == 1 else actions


def valid_slates(slates: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`(n_envs,)` True where a policy here can choose `slates` at all: distinct allowed
    candidates on the first `min(n_allowed, slate_size)` ranks, then the fill."""
    slates = as_slates(slates)
    n_envs, size = slates.shape
    n_allowed = mask.sum(axis=1)
    fill = top_k_slate(np.where(mask, 0.0, -np.inf), size).actions.reshape(n_envs, size)
    inside = (slates >= 0) & (slates < mask.shape[1])
    safe = np.where(inside, slates, 0)
    allowed = inside & np.take_along_axis(mask, safe, axis=1)
    filled = np.arange(size)[None, :] >= n_allowed[:, None]
    ok = np.where(filled, slates == fill, allowed)
    earlier = np.tri(size, k=-1, dtype=bool)[None]
    repeated = ((slates[:, :, None] == slates[:, None, :]) & earlier).any(axis=2)
    return ok.all(axis=1) & ~repeated.any(axis=1)


def rank_mask(mask: np.ndarray, slate_size: int) -> np.ndarray:
    """`(n_envs, slate_size)` True for the ranks that hold an allowed candidate."""
    return np.arange(slate_size)[None, :] < mask.sum(axis=1)[:, None]


def uniform_probabilities(mask: np.ndarray, slate_size: int) -> np.ndarray:
    """Distribution of `masked_uniform`: `(n_envs, K)`, or per-rank `(n_envs, L, K)`.

    Uniform sampling without replacement puts each allowed candidate at each fillable
    rank with probability `1 / n_allowed`.
    """
    uniform = mask / np.maximum(mask.sum(axis=1, keepdims=True), 1)
    if slate_size == 1:
        return uniform
    return uniform[:, None, :] * rank_mask(mask, slate_size)[:, :, None]


def one_hot_probabilities(actions: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Distribution of a deterministic choice: one-hot at `actions` on allowed candidates,
    `(n_envs, K)` for `(n_envs,)` actions, else per-rank `(n_envs, L, K)`."""
    slates = as_slates(actions)
    n_envs, size = slates.shape
    probs = np.zeros((n_envs, size, mask.shape[1]))
    rows = np.arange(n_envs)[:, None]
    probs[rows, np.arange(size)[None, :], slates] = 1.0
    probs *= mask[:, None, :]
    return probs[:, 0, :] if np.ndim(actions) == 1 else probs


class GreedyPolicy(ABC):
    """A deterministic policy: `top_k_slate` of `scores(obs, mask)`.

    Subclasses define `scores` and set `slate_size`; `allowed` reads the LiveStream mask
    unless a subclass knows its action count another way.
    """

    slate_size: int = 1

    def allowed(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        """`(n_envs, K)` bool: the candidates this policy may choose."""
        return action_mask(obs, mask, obs["candidates"].shape[1])

    @abstractmethod
    def scores(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        """`(n_envs, K)` scores, -inf where not allowed."""

    def act(self, obs: Obs, mask: np.ndarray | None = None) -> Action:
        return top_k_slate(self.scores(obs, mask), self.slate_size)

    def probabilities(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        chosen = top_k_slate(self.scores(obs, mask), self.slate_size).actions
        return one_hot_probabilities(chosen, self.allowed(obs, mask))

    def slate_probability(self, obs: Obs, slates: np.ndarray,
                          mask: np.ndarray | None = None) -> np.ndarray:
        chosen = as_slates(self.act(obs, mask).actions)
        return (as_slates(slates) == chosen).all(axis=1).astype(np.float64)
