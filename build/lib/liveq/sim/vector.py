"""One way to build vectorised environments, for liveq's own envs and any Gymnasium id.

liveq envs (`liveq/LiveStream-v0`, ...) register a batched `vector_entry_point` and are
built as one `gymnasium.vector.VectorEnv` over their numpy core; other ids go through
`gymnasium.make_vec` (sync). Every vector env returned here uses Gymnasium's default
`NEXT_STEP` autoreset: after a slot ends, the next `step` ignores that slot's action and
returns its reset observation.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

import liveq.sim  # noqa: F401  (registers liveq envs)
from liveq.core.config import ConfigError


def make_vec_env(env_id: str, n_envs: int, kwargs: dict[str, Any] | None = None,
                 seed: int | None = None) -> gym.vector.VectorEnv:
    """Build `n_envs` parallel copies of `env_id`, reset with `seed` if given."""
    if n_envs < 1:
        raise ConfigError(f"env.n_envs must be at least 1, got {n_envs}")
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as exc:
        raise ConfigError(f"env.id: unknown environment '{env_id}' ({exc})") from None
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    envs = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode=mode, **(kwargs or {}))
    if seed is not None:
        envs.reset(seed=seed)
    return envs
