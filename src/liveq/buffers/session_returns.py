"""Discounted returns over logged sessions, for learners that need Monte Carlo returns.

A replay buffer stores one-step transitions; REINFORCE (`liveq.algos.reinforce`) needs
for every logged decision the discounted return of the rest of its session,

    R_t = r_t + gamma r_{t+1} + ... + gamma^(T-t) r_T      (T: the session's last step)

`SessionReturnBuffer` wraps a filled `ReplayBuffer` and computes these once, walking
each env's rows (an env's next row is `stride` rows on, as for n-step replay). A session
ends at a termination or a truncation (the env's time limit): nothing after it is
counted and nothing is bootstrapped (REINFORCE has no critic). A session still open when
the log ends is cut there: its rows get the return of the steps the log holds, and are
counted in `cut_rows`. A buffer filled in one add (`liveq learn`'s joined log, whose rows
are not in session order) holds one step per env, so its returns are the immediate
rewards; so does a buffer whose adds differ in size (no env layout to walk). Rows of
autoreset steps (invalid) are never sampled.

`sample` gives `SessionBatch`es: observations, logged actions, returns and, when the
log had them, the behaviour's propensities of the logged actions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from liveq.buffers.replay import ReplayBuffer
from liveq.core.config import ConfigError
from liveq.policies.base import Obs


class SessionBatch(NamedTuple):
    """Logged decisions with the discounted return that followed each."""

    obs: Obs  # batched observation, first axis = batch
    actions: np.ndarray  # (batch,) or (batch, slate_size) int64
    returns: np.ndarray  # (batch,) float32 discounted return of the rest of the session
    propensities: np.ndarray | None = None  # (batch,) or (batch, slate_size) float64:
    # the behaviour's probability of each logged item; None when the log has none


def session_returns(rewards: np.ndarray, ends: np.ndarray,
                    gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Discounted returns `(T, n_envs)` of rows in time order, and which rows' sessions
    the log cut off (no end seen at or after them).

    `rewards` and `ends` (True where a session ended, by termination or truncation) are
    `(T, n_envs)`; the return stops at each end.
    """
    returns = np.zeros(rewards.shape, np.float64)
    cut = np.zeros(rewards.shape, bool)
    following = np.zeros(rewards.shape[1])
    open_at_end = np.ones(rewards.shape[1], bool)
    for t in range(rewards.shape[0] - 1, -1, -1):
        following = np.where(ends[t], 0.0, following)
        open_at_end &= ~ends[t]
        following = rewards[t] + gamma * following
        returns[t] = following
        cut[t] = open_at_end
    return returns, cut


class SessionReturnBuffer:
    """A read-only view of a filled `ReplayBuffer` that samples `SessionBatch`es."""

    def __init__(self, buffer: ReplayBuffer, gamma: float,
                 propensities: np.ndarray | None = None):
        """`propensities`, when given, has one entry (or one per rank) per buffer row."""
        if not 0.0 <= gamma <= 1.0:
            raise ConfigError(f"gamma must be in [0, 1], got {gamma}")
        if propensities is not None and len(propensities) != buffer.size:
            raise ConfigError(f"propensities: {len(propensities)} rows for a buffer of "
                              f"{buffer.size}")
        self.buffer, self.gamma = buffer, gamma
        self.propensities = propensities
        self.returns = np.zeros(buffer.size, np.float32)
        self.cut = np.zeros(buffer.size, bool)
        self._compute()
        self.rows = np.flatnonzero(buffer.valid[:buffer.size])

    def _compute(self) -> None:
        b = self.buffer
        start = b.pos if b.size == b.capacity else 0
        order = (start + np.arange(b.size)) % b.capacity  # oldest row first
        if b.stride > 0 and b.size % b.stride == 0:
            grid = order.reshape(-1, b.stride)  # (T, n_envs): an env's rows down a column
        else:  # no known env layout: every row is a session of its own, one step long
            grid = order.reshape(1, -1)
        ends = (b.terminated[grid] > 0) | b.truncated[grid]
        returns, cut = session_returns(b.rewards[grid], ends, self.gamma)
        self.returns[grid] = returns
        self.cut[grid] = cut

    @property
    def cut_rows(self) -> int:
        """Valid rows whose session the log cut off (their return is partial)."""
        return int(self.cut[self.rows].sum())

    def __len__(self) -> int:
        return len(self.rows)

    def sample(self, batch_size: int, rng: np.random.Generator) -> SessionBatch:
        """Uniform sample with replacement of `batch_size` valid rows."""
        if len(self.rows) == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return self.batch(self.rows[rng.integers(0, len(self.rows), size=batch_size)])

    def batch(self, idx: np.ndarray) -> SessionBatch:
        """The rows `idx` as a batch."""
        b = self.buffer
        obs = b.codec.decode({k: v[idx] for k, v in b.obs.items()})
        props = None if self.propensities is None else self.propensities[idx]
        return SessionBatch(obs, b.actions[idx], self.returns[idx], props)
