"""A small chain MDP (`liveq/Chain-v0`) with exactly known optimal Q-values.

The chain is the classic test of exploration: a small reward sits next to the start and a
large one at the far end, so an agent that stops exploring too early settles for the small
one. `chain_optimal_q` solves it exactly by value iteration, which lets tests compare a
learned Q-table (or network) against the true values.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from liveq.core.errors import ConfigError, InvalidActionError

CHAIN_ID = "liveq/Chain-v0"
LEFT, RIGHT = 0, 1


def chain_transitions(n_states: int, start_reward: float = 0.1,
                      end_reward: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic next states and rewards of each move, both `(n_states, 2)`.

    `[s, LEFT]` and `[s, RIGHT]` describe moving one state left or right; walls keep the
    agent in place. Moving left at state 0 pays `start_reward`, moving right at the last
    state pays `end_reward`, every other move pays 0.
    """
    states = np.arange(n_states)
    next_states = np.stack([np.maximum(states - 1, 0), np.minimum(states + 1, n_states - 1)],
                           axis=1)
    rewards = np.zeros((n_states, 2))
    rewards[0, LEFT] = start_reward
    rewards[n_states - 1, RIGHT] = end_reward
    return next_states, rewards


def chain_optimal_q(n_states: int, gamma: float, *, slip: float = 0.0,
                    start_reward: float = 0.1, end_reward: float = 1.0,
                    tol: float = 1e-12, max_iter: int = 100_000) -> np.ndarray:
    """Optimal Q-values `(n_states, 2)` of the chain, by value iteration.

    With probability `slip` the opposite move is made, so
    `Q(s, a) = (1 - slip) [r(s, a) + gamma V(s'(s, a))] + slip [r(s, a') + gamma V(s'(s, a'))]`
    with `a'` the other action and `V(s) = max_a Q(s, a)`. These are the values of the
    infinite-horizon chain: the env's `max_steps` truncation is not part of the MDP.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1) for value iteration, got {gamma}")
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip must be in [0, 1], got {slip}")
    next_states, rewards = chain_transitions(n_states, start_reward, end_reward)
    q = np.zeros((n_states, 2))
    for _ in range(max_iter):
        move_values = rewards + gamma * q.max(axis=1)[next_states]  # (n_states, 2)
        new_q = (1.0 - slip) * move_values + slip * move_values[:, ::-1]
        if np.max(np.abs(new_q - q)) < tol:
            return new_q
        q = new_q
    raise RuntimeError(f"value iteration did not converge in {max_iter} iterations")


class ChainEnv(gym.Env):
    """
    ## Description

    `n_states` states in a row; the agent starts at state 0 (the left end). Moving left
    at state 0 pays a small reward and keeps the agent there; walking right to the last
    state and moving right again pays a large reward each step. Discounted return favours
    the far end, but a greedy agent that has not explored is drawn to the near reward.

    ## Action Space

    `Discrete(2)`: `0` moves left, `1` moves right (an integer: anything else raises
    `InvalidActionError`). With probability `slip` the opposite move is made instead.

    ## Observation Space

    `Discrete(n_states)`: the index of the current state. With `one_hot=True`, a
    `Box(0, 1, (n_states,), float32)` one-hot encoding of it, for neural agents.

    ## Rewards

    `start_reward` (default 0.1) for moving left at state 0, `end_reward` (default 1.0)
    for moving right at state `n_states - 1`, and 0 for every other move. The reward
    follows the move actually made, so a slip can turn a right into the small reward.

    ## Starting State

    Always state 0.

    ## Episode End

    The chain has no terminal state (`terminated` is always False); the episode is
    truncated after `max_steps` steps (default 20).

    ## Arguments

    `gymnasium.make("liveq/Chain-v0", n_states=5, slip=0.0, start_reward=0.1,
    end_reward=1.0, max_steps=20, one_hot=False)`; call
    `liveq.sim.chain.register_chain()` first. `info["state"]` always holds the index.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, n_states: int = 5, slip: float = 0.0, start_reward: float = 0.1,
                 end_reward: float = 1.0, max_steps: int = 20, one_hot: bool = False):
        if n_states < 2:
            raise ConfigError(f"n_states must be at least 2, got {n_states}")
        if not 0.0 <= slip <= 1.0:
            raise ConfigError(f"slip must be in [0, 1], got {slip}")
        if max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
        self.n_states = n_states
        self.slip = slip
        self.max_steps = max_steps
        self.one_hot = one_hot
        self._next_states, self._rewards = chain_transitions(n_states, start_reward, end_reward)
        self.action_space = spaces.Discrete(2)
        if one_hot:
            self.observation_space = spaces.Box(0.0, 1.0, (n_states,), dtype=np.float32)
        else:
            self.observation_space = spaces.Discrete(n_states)
        self.state = 0
        self.steps = 0

    def _obs(self) -> np.int64 | np.ndarray:
        if self.one_hot:
            return np.eye(self.n_states, dtype=np.float32)[self.state]
        return np.int64(self.state)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.state = 0
        self.steps = 0
        return self._obs(), {"state": self.state}

    def step(self, action):
        if isinstance(action, (bool, np.bool_)) or not self.action_space.contains(action):
            raise InvalidActionError(f"action must be 0 (left) or 1 (right), got {action!r}")
        slipped = self.np_random.random() < self.slip
        move = 1 - int(action) if slipped else int(action)
        reward = float(self._rewards[self.state, move])
        self.state = int(self._next_states[self.state, move])
        self.steps += 1
        truncated = self.steps >= self.max_steps
        return self._obs(), reward, False, truncated, {"state": self.state}


def register_chain() -> None:
    """Register `liveq/Chain-v0` with Gymnasium; calling it again does nothing."""
    if CHAIN_ID not in gym.registry:
        gym.register(id=CHAIN_ID, entry_point="liveq.sim.chain:ChainEnv")
