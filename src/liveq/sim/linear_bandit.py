"""A linear contextual bandit with a known parameter (`liveq/LinearBandit-v0`).

The expected reward is exactly linear in the features a shared linear bandit model uses
(`concat(viewer, arm)`), so the best arm, and every policy's regret, is known:
`LinearBanditEnv.expected_rewards` gives it and each step's `info["regret"]` reports it.
The learning tests of LinUCB and linear Thompson sampling run on it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from liveq.core.errors import ConfigError, InvalidActionError

LINEAR_BANDIT_ID = "liveq/LinearBandit-v0"


class LinearBanditEnv(gym.Env):
    """
    ## Description

    `n_arms` fixed arms with feature vectors `arms[k]` (unit norm) and a context drawn
    uniformly from `[-1, 1]^context_dim` each step. Choosing arm `k` pays
    `theta_context . context + theta_arm . arms[k] + noise`, noise `N(0, noise_sd^2)`.
    The arms and both parameters are drawn once from `world_seed` when the env is built
    (the same for every reset), so the problem is fixed and its answer known.

    ## Action Space

    `Discrete(n_arms)`: the arm to pull.

    ## Observation Space

    The LiveStream layout: `{"viewer": context (context_dim,), "candidates": arms
    (n_arms, arm_dim), "mask": ones (n_arms,) int8}`.

    ## Rewards

    As above; `info["regret"]` is the best arm's expected reward minus the chosen one's.

    ## Episode End

    Never terminated; truncated after `max_steps` steps.

    ## Arguments

    `gymnasium.make("liveq/LinearBandit-v0", n_arms=10, arm_dim=5, context_dim=2,
    noise_sd=0.3, max_steps=100, world_seed=0)`.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, n_arms: int = 10, arm_dim: int = 5, context_dim: int = 2,
                 noise_sd: float = 0.3, max_steps: int = 100, world_seed: int = 0):
        for name, value in (("n_arms", n_arms), ("arm_dim", arm_dim),
                            ("context_dim", context_dim), ("max_steps", max_steps)):
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if noise_sd < 0:
            raise ConfigError(f"noise_sd must be >= 0, got {noise_sd}")
        world = np.random.default_rng(world_seed)
        arms = world.standard_normal((n_arms, arm_dim))
        self.arms = (arms / np.linalg.norm(arms, axis=1, keepdims=True)).astype(np.float32)
        self.theta_arm = world.standard_normal(arm_dim)
        self.theta_context = world.standard_normal(context_dim)
        self.noise_sd, self.max_steps = noise_sd, max_steps
        self.action_space = spaces.Discrete(n_arms)
        self.observation_space = spaces.Dict({
            "viewer": spaces.Box(-1.0, 1.0, (context_dim,), np.float32),
            "candidates": spaces.Box(-1.0, 1.0, (n_arms, arm_dim), np.float32),
            "mask": spaces.MultiBinary(n_arms),
        })
        self.context = np.zeros(context_dim, dtype=np.float32)
        self.steps = 0

    def expected_rewards(self, context: np.ndarray) -> np.ndarray:
        """`(n_arms,)` expected reward of each arm in `context`."""
        return (float(np.dot(self.theta_context, context))
                + self.arms.astype(np.float64) @ self.theta_arm)

    def _obs(self) -> dict[str, np.ndarray]:
        self.context = self.np_random.uniform(-1.0, 1.0, self.context.shape).astype(np.float32)
        return {"viewer": self.context.copy(), "candidates": self.arms.copy(),
                "mask": np.ones(len(self.arms), dtype=np.int8)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        if isinstance(action, (bool, np.bool_)) or not self.action_space.contains(action):
            raise InvalidActionError(f"action must be an arm in [0, {len(self.arms)}), "
                                     f"got {action!r}")
        expected = self.expected_rewards(self.context)
        reward = float(expected[int(action)] + self.noise_sd * self.np_random.standard_normal())
        info = {"regret": float(expected.max() - expected[int(action)])}
        self.steps += 1
        return self._obs(), reward, False, self.steps >= self.max_steps, info


def register_linear_bandit() -> None:
    """Register `liveq/LinearBandit-v0` with Gymnasium; calling it again does nothing."""
    if LINEAR_BANDIT_ID not in gym.registry:
        gym.register(id=LINEAR_BANDIT_ID, entry_point="liveq.sim.linear_bandit:LinearBanditEnv")
