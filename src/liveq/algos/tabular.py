"""Tabular Q-learning (Watkins 1989) for small problems with discrete states and actions.

The update, for a transition `(s, a, r, s')`:

    Q(s, a) <- Q(s, a) + alpha [r + gamma (1 - terminated) max_a' Q(s', a') - Q(s, a)]

Only `terminated` stops the bootstrap; a truncated episode (time limit) still bootstraps
from `s'`, because the state itself has a future. Acting is epsilon-greedy with exact
propensities (`liveq.policies.explore.EpsilonGreedy` around the greedy table policy, the
same wrapper DQN uses); the epsilon schedule is linear from `epsilon_start` to
`epsilon_end` (`linear_schedule`). The greedy action among tied Q-values is the lowest
index, as everywhere in liveq, so the greedy mass is not split between ties: with the
table at zero the greedy choice is action 0 and exploration comes from epsilon alone.
The training loop (`liveq.train`, loop kind "online") updates the table after every
vector step from that step's transitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from liveq.buffers.replay import ReplayBatch
from liveq.core.config import ConfigError, require
from liveq.core.errors import CheckpointError
from liveq.policies.base import Action, GreedyPolicy
from liveq.policies.explore import EpsilonGreedy, behaviour_epsilon, linear_schedule


@dataclass(kw_only=True)
class QLearningConfig:
    """Hyperparameters of tabular Q-learning."""

    alpha: float = 0.1
    """Step size of the update, in (0, 1]."""
    gamma: float = 0.9
    """Discount factor, in [0, 1]."""
    epsilon_start: float = 1.0
    """Exploration probability at step 0."""
    epsilon_end: float = 0.05
    """Exploration probability after `epsilon_decay_steps` steps and from then on."""
    epsilon_decay_steps: int = 1000
    """Steps over which epsilon falls linearly; 0 means `epsilon_end` from the start."""

    def validate(self) -> None:
        require(0.0 < self.alpha <= 1.0, f"alpha must be in (0, 1], got {self.alpha}")
        require(0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}")
        require(0.0 <= self.epsilon_end <= self.epsilon_start <= 1.0,
                "epsilon must satisfy 0 <= epsilon_end <= epsilon_start <= 1, got "
                f"epsilon_start={self.epsilon_start}, epsilon_end={self.epsilon_end}")
        require(self.epsilon_decay_steps >= 0,
                f"epsilon_decay_steps must be >= 0, got {self.epsilon_decay_steps}")


def q_learning_target(q: np.ndarray, r: Any, s_next: Any, terminated: Any,
                      gamma: float) -> Any:
    """`r + gamma (1 - terminated) max_a' q[s_next, a']`; scalars or `(batch,)` arrays."""
    not_done = 1.0 - np.asarray(terminated, dtype=np.float64)
    return r + gamma * not_done * q[s_next].max(axis=-1)


def q_learning_update(q: np.ndarray, s: Any, a: Any, r: Any, s_next: Any, terminated: Any,
                      alpha: float, gamma: float) -> Any:
    """New value of `q[s, a]` after one Q-learning step; `q` (n_states, n_actions) unchanged.

    Given arrays, every transition is updated from the same `q` (no accumulation).
    """
    target = q_learning_target(q, r, s_next, terminated, gamma)
    return q[s, a] + alpha * (target - q[s, a])


def integer_states(obs: Any, n_states: int) -> np.ndarray:
    """`(n_envs,)` int64 state indices, checked to be integers in `[0, n_states)`."""
    states = np.asarray(obs)
    if states.ndim != 1 or not np.issubdtype(states.dtype, np.integer):
        raise ValueError("tabular agents take a 1-D batch of integer states, got "
                         f"shape {states.shape} dtype {states.dtype}")
    if states.size and (states.min() < 0 or states.max() >= n_states):
        raise ValueError(f"states must be in [0, {n_states}), got {states}")
    return states.astype(np.int64)


class GreedyTablePolicy(GreedyPolicy):
    """Argmax over allowed actions of a Q-table row; observations are integer states.

    Holds the table itself (a live view: the agent updates it in place) or a copy.
    """

    def __init__(self, q: np.ndarray):
        self.q = q  # (n_states, n_actions)

    def allowed(self, obs: Any, mask: np.ndarray | None = None) -> np.ndarray:
        n_envs = len(integer_states(obs, self.q.shape[0]))
        if mask is None:
            return np.ones((n_envs, self.q.shape[1]), dtype=bool)
        return np.asarray(mask, dtype=bool)

    def scores(self, obs: Any, mask: np.ndarray | None = None) -> np.ndarray:
        """Q-values `(n_envs, n_actions)` of the states, -inf where not allowed."""
        rows = self.q[integer_states(obs, self.q.shape[0])]
        return np.where(self.allowed(obs, mask), rows, -np.inf)


class TabularQAgent:
    """A Q-table `(n_states, n_actions)` that acts epsilon-greedily and learns by Q-learning.

    `epsilon` follows `set_progress` (see `linear_schedule`); acting never changes the table.
    """

    def __init__(self, n_states: int, n_actions: int, config: QLearningConfig,
                 seed: int | np.random.SeedSequence | None = None):
        config.validate()
        self.config = config
        self.q = np.zeros((n_states, n_actions))
        self.rng = np.random.default_rng(seed)
        self.greedy = GreedyTablePolicy(self.q)
        self.behaviour = EpsilonGreedy(self.greedy, config.epsilon_start, self.rng)
        self.updates = 0  # update() calls

    epsilon = behaviour_epsilon

    def set_progress(self, env_steps: int, total_env_steps: int) -> float:
        """Move epsilon along its schedule (`epsilon_decay_steps` env steps); returns it."""
        c = self.config
        self.epsilon = linear_schedule(env_steps, c.epsilon_start, c.epsilon_end,
                                       c.epsilon_decay_steps)
        return self.epsilon

    def act(self, obs: np.ndarray, mask: np.ndarray | None = None) -> Action:
        """Epsilon-greedy actions `(n_envs,)` for integer states `obs` `(n_envs,)`."""
        return self.behaviour.act(obs, mask)

    def update(self, batch: ReplayBatch) -> dict[str, float]:
        """One synchronous Q-learning step from a batch of transitions (integer states).

        All targets are computed from the table as it was before the batch (as if the
        transitions came from parallel envs at the same moment). A pair `(s, a)` that
        appears k times moves once, by `alpha`, towards the mean of its k targets, so the
        result does not depend on the order of the batch. A batch of one is exactly the
        classic sequential update. Returns the mean absolute TD error before the step.
        """
        s, a = self._states(batch.obs), self._actions(batch.actions)
        targets = q_learning_target(self.q, np.asarray(batch.rewards, dtype=np.float64),
                                    self._states(batch.next_obs), batch.terminated,
                                    self.config.gamma)
        flat = s * self.q.shape[1] + a
        counts = np.bincount(flat, minlength=self.q.size)
        sums = np.bincount(flat, weights=targets, minlength=self.q.size)
        touched = counts > 0
        step = np.zeros(self.q.size)
        step[touched] = sums[touched] / counts[touched] - self.q.reshape(-1)[touched]
        td_error = float(np.mean(np.abs(targets - self.q[s, a])))
        self.q += self.config.alpha * step.reshape(self.q.shape)
        self.updates += 1
        return {"td_error": td_error}

    def greedy_policy(self, frozen: bool = False) -> GreedyTablePolicy:
        """The greedy policy (ties: lowest action index): a live view of the table, or
        with `frozen` a snapshot later updates leave alone."""
        return GreedyTablePolicy(self.q.copy()) if frozen else self.greedy

    def greedy_actions(self) -> np.ndarray:
        """Greedy action per state `(n_states,)`; ties go to the lowest action index."""
        return np.argmax(self.q, axis=1)

    def state_dict(self) -> dict[str, Any]:
        """Copy of the table, current epsilon and RNG state: enough to resume exactly."""
        return {"q": self.q.copy(), "epsilon": self.epsilon, "updates": self.updates,
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        q = np.asarray(state["q"], dtype=np.float64)
        if q.shape != self.q.shape:
            raise CheckpointError(f"q: saved Q-table shape {q.shape}, this env needs "
                                  f"{self.q.shape}")
        self.q[...] = q  # in place: the greedy policy views this table
        self.epsilon = float(state["epsilon"])
        self.updates = int(state["updates"])
        self.rng.bit_generator.state = state["rng"]

    def _states(self, obs: Any) -> np.ndarray:
        return integer_states(obs, self.q.shape[0])

    def _actions(self, a: Any) -> np.ndarray:
        actions = np.asarray(a)
        if not np.issubdtype(actions.dtype, np.integer) or (
                actions.size and (actions.min() < 0 or actions.max() >= self.q.shape[1])):
            raise ValueError(f"actions must be integers in [0, {self.q.shape[1]}), got {a}")
        return actions.astype(np.int64)


def _discrete_size(space: gym.Space, what: str) -> int:
    if not isinstance(space, gym.spaces.Discrete) or int(space.start) != 0:
        raise ConfigError(f"tabular Q-learning needs a Discrete {what} space starting at 0, "
                          f"got {space}")
    return int(space.n)


def build_tabular_q(obs_space: gym.Space, action_space: gym.Space, config: QLearningConfig,
                    seed: int | np.random.SeedSequence) -> TabularQAgent:
    """A zero Q-table sized by the env's (single) Discrete observation and action spaces."""
    return TabularQAgent(_discrete_size(obs_space, "observation"),
                         _discrete_size(action_space, "action"), config, seed)
