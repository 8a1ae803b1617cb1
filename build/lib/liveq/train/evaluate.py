"""A default evaluator for plain Gymnasium envs: mean return of a policy's first episodes.

`train(..., evaluate=None)` uses it; envs with richer online metrics (the LiveStream env)
pass their own function with the same signature:
`evaluate(policy, n_episodes, seed) -> {"return": mean episode return, ...}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from liveq.policies.base import Policy
from liveq.sim.vector import make_vec_env

Evaluate = Callable[[Policy, int, int], dict[str, float]]


def make_gym_evaluator(env_id: str, kwargs: dict[str, Any] | None = None) -> Evaluate:
    """Evaluator running `n_episodes` parallel copies of the env, one episode each."""

    def evaluate(policy: Policy, n_episodes: int, seed: int) -> dict[str, float]:
        envs = make_vec_env(env_id, n_episodes, kwargs)
        try:
            obs, _ = envs.reset(seed=seed)
            returns = np.zeros(n_episodes)  # (n_episodes,)
            lengths = np.zeros(n_episodes, dtype=np.int64)
            running = np.ones(n_episodes, dtype=bool)  # first episode not over yet
            while running.any():
                obs, rewards, terminated, truncated, _ = envs.step(policy.act(obs).actions)
                returns += np.where(running, rewards, 0.0)
                lengths += running
                running &= ~(terminated | truncated)
        finally:
            envs.close()
        return {"return": float(returns.mean()), "return_std": float(returns.std()),
                "length": float(lengths.mean())}

    return evaluate
