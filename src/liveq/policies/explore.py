"""Exploration around a deterministic policy, with exact propensities and distributions.

One wrapper per way of exploring, used by training, synthetic logs and off-policy
evaluation alike:

* `EpsilonGreedy(base, epsilon, rng)`: with probability `epsilon` a uniformly random
  ordered slate of distinct allowed candidates (a single candidate when `slate_size` is
  1), else the base policy's choice. A slate's probability is
  `(1 - epsilon) P_base(slate) + epsilon P_uniform(slate)`.
* `Softmax(base, temperature, rng)`: candidates drawn with probability proportional to
  `exp(score / temperature)`; slates are drawn without replacement (Plackett-Luce), so a
  slate's probability is the product of the sequential choice probabilities
  `prod_r exp(s_{a_r} / T) / sum_{k allowed, not yet shown} exp(s_k / T)`.

`epsilon` and `temperature` are plain attributes: a training loop sets them each step,
e.g. from `linear_schedule`. The representation of full distributions (per-rank marginals
for slates) is described in `liveq.policies.base`.
"""

from __future__ import annotations

import numpy as np

from liveq.core.errors import UsageError
from liveq.policies.base import (
    Action,
    Obs,
    Policy,
    ScoringPolicy,
    as_slates,
    masked_uniform,
    rank_mask,
    top_k_slate,
    uniform_probabilities,
    uniform_slate_probability,
    valid_slates,
)

# Per-rank softmax marginals enumerate every ordered prefix; beyond this many prefix
# entries per row the exact computation is refused rather than run out of memory.
MAX_PREFIX_ENTRIES = 1 << 22
# Rows of prefix entries worked on at once (bounds the memory of the enumeration).
PREFIX_CHUNK_ENTRIES = 1 << 23


def linear_schedule(step: float, start: float, end: float, duration_steps: float) -> float:
    """A value moving linearly from `start` (step 0) to `end` (step `duration_steps` on).

    A duration of 0 or less gives `end` from the start. DQN decays epsilon over
    `epsilon_fraction * total_env_steps` steps, tabular Q-learning over
    `epsilon_decay_steps`.
    """
    if duration_steps <= 0 or step >= duration_steps:
        return end
    return start + (end - start) * (step / duration_steps)


behaviour_epsilon = property(
    lambda self: self.behaviour.epsilon,
    lambda self, value: setattr(self.behaviour, "epsilon", value),
    doc="An exploring learner's epsilon: that of its `behaviour` (an `EpsilonGreedy`).")
"""Class attribute for learners that act through `self.behaviour`: `epsilon = behaviour_epsilon`."""


class EpsilonGreedy:
    """`base`'s choice, replaced with probability `epsilon` by a uniformly random slate.

    Each call draws `rng.random(n_envs)` (who explores) and then one uniform slate per
    env (`masked_uniform`), whether or not it explores, so a run's random stream does not
    depend on the draws. `base` is usually deterministic (a greedy policy); any policy
    with the full contract works.
    """

    def __init__(self, base: Policy, epsilon: float, rng: np.random.Generator):
        self.base, self.rng = base, rng
        self.epsilon = epsilon

    @property
    def epsilon(self) -> float:
        return self._epsilon

    @epsilon.setter
    def epsilon(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"epsilon must be in [0, 1], got {value}")
        self._epsilon = value

    @property
    def slate_size(self) -> int:
        return self.base.slate_size

    def allowed(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        return self.base.allowed(obs, mask)

    def act(self, obs: Obs, mask: np.ndarray | None = None) -> Action:
        allowed = self.allowed(obs, mask)  # (n_envs, K)
        chosen = self.base.act(obs, allowed)
        explore = self.rng.random(len(allowed)) < self.epsilon  # (n_envs,)
        uniform = masked_uniform(allowed, self.slate_size, self.rng).actions
        actions = np.where(explore if uniform.ndim == 1 else explore[:, None], uniform,
                           chosen.actions)
        if np.all(chosen.propensities == 1.0):  # the base is deterministic here
            base_prob = (as_slates(actions) == as_slates(chosen.actions)).all(axis=1)
        else:
            base_prob = self.base.slate_probability(obs, actions, allowed)
        return Action(actions, self._mix(base_prob, allowed, actions))

    def probabilities(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        allowed = self.allowed(obs, mask)
        uniform = uniform_probabilities(allowed, self.slate_size)
        return self.epsilon * uniform + (1.0 - self.epsilon) * self.base.probabilities(
            obs, allowed)

    def slate_probability(self, obs: Obs, slates: np.ndarray,
                          mask: np.ndarray | None = None) -> np.ndarray:
        allowed = self.allowed(obs, mask)
        return self._mix(self.base.slate_probability(obs, slates, allowed), allowed, slates)

    def _mix(self, base_prob: np.ndarray, allowed: np.ndarray,
             slates: np.ndarray) -> np.ndarray:
        share = uniform_slate_probability(allowed.sum(axis=1), self.slate_size,
                                          mass=self.epsilon)
        return (1.0 - self.epsilon) * base_prob + share * valid_slates(slates, allowed)


class Softmax:
    """Candidates drawn in proportion to `exp(base.scores / temperature)`, slates by
    Plackett-Luce (the Gumbel-top-k trick draws them exactly: one `rng.gumbel` per
    candidate)."""

    def __init__(self, base: ScoringPolicy, temperature: float, rng: np.random.Generator):
        if not callable(getattr(base, "scores", None)):
            raise UsageError(f"Softmax needs a policy with scores(); "
                             f"{type(base).__name__} has none")
        self.base, self.rng = base, rng
        self.temperature = temperature

    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        if not (np.isfinite(value) and value > 0):
            raise UsageError(f"temperature must be a positive number, got {value}")
        self._temperature = value

    @property
    def slate_size(self) -> int:
        return self.base.slate_size

    def allowed(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        return self.base.allowed(obs, mask)

    def log_weights(self, obs: Obs, allowed: np.ndarray) -> np.ndarray:
        """`(n_envs, K)` scores / temperature, -inf where not allowed."""
        scores = np.asarray(self.base.scores(obs, allowed), dtype=np.float64)
        return np.where(allowed, scores / self.temperature, -np.inf)

    def act(self, obs: Obs, mask: np.ndarray | None = None) -> Action:
        allowed = self.allowed(obs, mask)
        log_w = self.log_weights(obs, allowed)
        keys = log_w + self.rng.gumbel(size=log_w.shape)
        actions = top_k_slate(keys, self.slate_size).actions
        return Action(actions, plackett_luce_probability(log_w, actions, allowed))

    def probabilities(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        allowed = self.allowed(obs, mask)
        log_w = self.log_weights(obs, allowed)
        if self.slate_size == 1:
            with np.errstate(invalid="ignore"):
                return np.nan_to_num(np.exp(log_w - log_sum_exp(log_w)[:, None]), nan=0.0)
        return plackett_luce_marginals(log_w, self.slate_size)

    def slate_probability(self, obs: Obs, slates: np.ndarray,
                          mask: np.ndarray | None = None) -> np.ndarray:
        allowed = self.allowed(obs, mask)
        return plackett_luce_probability(self.log_weights(obs, allowed), slates, allowed)


def log_sum_exp(log_w: np.ndarray) -> np.ndarray:
    """`log(sum(exp(log_w)))` over the last axis; -inf where every entry is -inf."""
    top = np.max(log_w, axis=-1, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return (safe + np.log(np.exp(log_w - safe).sum(axis=-1, keepdims=True)))[..., 0]


def plackett_luce_probability(log_w: np.ndarray, slates: np.ndarray,
                              allowed: np.ndarray) -> np.ndarray:
    """`(n_envs,)` probability of ordered `slates` drawn without replacement with weights
    `exp(log_w)` (-inf = not allowed); 0 for slates no policy here can choose."""
    slates = as_slates(slates)
    n_envs, size = slates.shape
    rows = np.arange(n_envs)
    fillable = rank_mask(allowed, size)
    ok = valid_slates(slates, allowed)
    picks = np.where(ok[:, None], slates, 0)
    remaining = log_w.copy()
    prob = np.ones(n_envs)
    for rank in range(size):
        chosen = remaining[rows, picks[:, rank]]
        with np.errstate(invalid="ignore"):
            p = np.exp(chosen - log_sum_exp(remaining))
        prob *= np.where(fillable[:, rank] & ok, p, 1.0)
        remaining[rows, picks[:, rank]] = -np.inf
    return np.where(ok, prob, 0.0)


def plackett_luce_marginals(log_w: np.ndarray, slate_size: int) -> np.ndarray:
    """Exact per-rank marginals `(n_envs, slate_size, K)` of Plackett-Luce slates.

    Enumerates every ordered prefix of the first `slate_size - 1` ranks (`K**(L-1)` per
    row, repeated candidates carrying probability 0), in chunks of rows; refuses with a
    `UsageError` when one row alone would need more than `MAX_PREFIX_ENTRIES` entries.
    """
    n_envs, k = log_w.shape
    per_row = k ** slate_size
    if per_row > MAX_PREFIX_ENTRIES:
        raise UsageError(
            f"exact per-rank probabilities of a softmax slate of {slate_size} over {k} "
            f"candidates need {per_row:,} prefix entries per row (limit "
            f"{MAX_PREFIX_ENTRIES:,}); use slate_probability for given slates instead")
    chunk = max(1, PREFIX_CHUNK_ENTRIES // per_row)
    parts = [_marginals(log_w[i:i + chunk], slate_size) for i in range(0, n_envs, chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, slate_size, k))


def _marginals(log_w: np.ndarray, slate_size: int) -> np.ndarray:
    """Marginals of a chunk of rows: rank by rank, every prefix's probability times the
    next pick's share of the weight the prefix leaves."""
    n_envs, k = log_w.shape
    marginals = np.zeros((n_envs, slate_size, k))
    prefix_prob = np.ones((n_envs, 1))  # (n_envs, P)
    used = np.zeros((n_envs, 1, k), dtype=bool)  # (n_envs, P, K)
    for rank in range(slate_size):
        left = np.where(used, -np.inf, log_w[:, None, :])  # (n_envs, P, K)
        with np.errstate(invalid="ignore"):
            step = np.exp(left - log_sum_exp(left)[..., None])
        joint = prefix_prob[:, :, None] * np.nan_to_num(step, nan=0.0)  # (n_envs, P, K)
        marginals[:, rank] = joint.sum(axis=1)
        if rank + 1 < slate_size:
            prefix_prob = joint.reshape(n_envs, -1)
            used = (used[:, :, None, :] | np.eye(k, dtype=bool)[None, None]).reshape(
                n_envs, -1, k)
    return marginals
