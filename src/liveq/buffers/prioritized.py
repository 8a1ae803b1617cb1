"""Proportional prioritized experience replay (Schaul et al. 2016, ICLR).

Row i is drawn with probability P(i) = p_i^alpha / sum_k p_k^alpha, where p_i = |TD
error| + eps from the last gradient step that used it, and a new row gets the largest p
seen so far, so every transition is replayed at least once soon after it arrives. The
bias this introduces is corrected by importance weights

    w_i = (N * P(i))^-beta / max_j w_j          (j over the batch, as Dopamine does)

with N the number of valid rows and beta annealed from `beta_start` to `beta_end` over
training (`priority_beta`). Normalising by the batch's largest weight only scales the
loss down, so the step size stays stable.

The priorities live in a `SumTree`; the buffer's checkpoint holds its leaves and the
largest priority, so a resumed run draws exactly the rows an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liveq.buffers.replay import ObsCodec, Priorities, ReplayBatch, ReplayBuffer, ReplaySchedule
from liveq.buffers.sum_tree import SumTree
from liveq.policies.explore import linear_schedule


class PrioritizedReplayBuffer(ReplayBuffer):
    """`ReplayBuffer` that draws rows in proportion to priority^alpha, with importance
    weights and indices on every batch for `update_priorities`."""

    def __init__(self, codec: ObsCodec, capacity: int, action_shape: tuple[int, ...] = (),
                 *, alpha: float, eps: float, n_step: int = 1, gamma: float = 1.0):
        super().__init__(codec, capacity, action_shape, n_step=n_step, gamma=gamma)
        self.alpha, self.eps = alpha, eps
        self.tree = SumTree(capacity)
        self.max_priority = 1.0  # largest |TD error| + eps so far; new rows get it

    def _written(self, slots: np.ndarray, valid: np.ndarray) -> None:
        """New rows at the largest priority; autoreset rows at 0, so never drawn."""
        self.tree.update(slots, np.where(valid, self.max_priority ** self.alpha, 0.0))

    def sample(self, batch_size: int, rng: np.random.Generator,
               beta: float = 1.0) -> ReplayBatch:
        """`batch_size` rows drawn by priority (stratified over the total), with their
        importance weights for exponent `beta` and their indices."""
        if self.tree.total <= 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = self.tree.sample(batch_size, rng)
        probabilities = self.tree.priorities(idx) / self.tree.total
        weights = (len(self) * probabilities) ** -beta
        weights /= weights.max()
        return self.batch(idx)._replace(weights=weights.astype(np.float32), indices=idx)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set p = |TD error| + eps for the rows of the last batch (for a row drawn twice,
        one of its two errors)."""
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64)) + self.eps
        self.tree.update(indices, priorities ** self.alpha)
        self.max_priority = max(self.max_priority, float(priorities.max()))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "tree": self.tree.state_dict(),
                "max_priority": self.max_priority}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.tree.load_state_dict(state["tree"])
        self.max_priority = float(state["max_priority"])


def make_replay_buffer(codec: ObsCodec, schedule: ReplaySchedule,
                       action_shape: tuple[int, ...] = ()) -> ReplayBuffer:
    """The buffer a learner's `ReplaySchedule` asks for: uniform or prioritized, 1 or n steps;
    `action_shape` is one action's (`(slate_size,)` for slates)."""
    n_step = {"n_step": schedule.n_step, "gamma": schedule.gamma}
    p = schedule.priorities
    if p is None:
        return ReplayBuffer(codec, schedule.buffer_size, action_shape, **n_step)
    return PrioritizedReplayBuffer(codec, schedule.buffer_size, action_shape, alpha=p.alpha,
                                   eps=p.eps, **n_step)


def priority_beta(priorities: Priorities, env_steps: int, total_env_steps: int) -> float:
    """The importance-weight exponent, linear from beta_start at step 0 to beta_end at the
    end of training."""
    return linear_schedule(env_steps, priorities.beta_start, priorities.beta_end,
                           total_env_steps)
