"""One way to build vectorised environments, for liveq's own envs and any Gymnasium id.

liveq envs (`liveq/LiveStream-v0`, ...) come with a batched core and are built directly as
a `gymnasium.vector.VectorEnv`; other ids go through `gymnasium.make_vec` (sync). Every
vector env returned here uses Gymnasium's default `NEXT_STEP` autoreset: after a slot
ends, the next `step` ignores that slot's action and returns its reset observation.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from liveq.config import ConfigError

LIVEQ_VECTOR_ENVS: dict[str, str] = {}  # env id -> "module:factory"; filled by liveq.sim


def make_vec_env(env_id: str, n_envs: int, kwargs: dict[str, Any] | None = None,
                 seed: int | None = None) -> gym.vector.VectorEnv:
    """Build `n_envs` parallel copies of `env_id`, reset with `seed` if given."""
    if n_envs < 1:
        raise ConfigError(f"env.n_envs must be at least 1, got {n_envs}")
    kwargs = dict(kwargs or {})
    if env_id in LIVEQ_VECTOR_ENVS:
        module, factory = LIVEQ_VECTOR_ENVS[env_id].split(":")
        envs = getattr(__import__(module, fromlist=[factory]), factory)(n_envs=n_envs, **kwargs)
    else:
        try:
            envs = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="sync", **kwargs)
        except gym.error.Error as exc:
            raise ConfigError(f"env.id: cannot make '{env_id}' ({exc})") from None
    if seed is not None:
        envs.reset(seed=seed)
    return envs
