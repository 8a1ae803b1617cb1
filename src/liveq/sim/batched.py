"""What the scenario envs share: config building from env kwargs, and one
`gymnasium.vector.VectorEnv` over a batched numpy core.

A scenario (AdPlacement, Ecommerce, LiveRoom) has a config dataclass, a core with
`reset(seed) -> obs` and `step(actions) -> (obs, reward, terminated, truncated, info)`,
and a function giving its single-env spaces; `CoreVectorEnv` wires them together.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from liveq.core.config import from_dict, to_dict

SEED_BOUND = 2**63  # the core's seed is drawn from the env's generator below this


def config_from(cls: type, config: Any, overrides: dict, path: str = "") -> Any:
    """A validated `cls` from an instance or mapping plus keyword overrides."""
    base = to_dict(config) if isinstance(config, cls) else dict(config or {})
    return from_dict(cls, {**base, **overrides}, path)


def check_config_kwargs(cls: type, kwargs: dict[str, Any], path: str) -> None:
    """Validate an env's keyword arguments (a run config's env.kwargs) before building it."""
    config_from(cls, kwargs.get("config"), {k: v for k, v in kwargs.items() if k != "config"},
                path)


class CoreVectorEnv(gym.vector.VectorEnv):
    """`num_envs` slots of a scenario stepped together by its numpy core; Gymnasium's
    `NEXT_STEP` autoreset (the core restarts a slot that ended on the next `step`).

    Subclasses set `config_class`, `core_class` and `spaces` (config -> single-env
    observation and action spaces); `reset(seed=s)` seeds `np_random` and draws the core's
    seed from it, as the single envs do, so a batch of one repeats the single env.
    """

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}
    config_class: type
    core_class: type
    seed_bound: int = SEED_BOUND

    @staticmethod
    def spaces(config: Any) -> tuple[gym.Space, gym.Space]:
        raise NotImplementedError

    def __init__(self, num_envs: int = 1, config: Any = None, **overrides: Any):
        self.config = config_from(self.config_class, config, overrides)
        self.core = self.core_class(self.config, num_envs)
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = self.spaces(self.config)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs = self.core.reset(int(self.np_random.integers(self.seed_bound)))
        return obs, self.reset_info()

    def reset_info(self) -> dict[str, Any]:
        """The info dict `reset` returns."""
        return {}

    def step(self, actions):
        return self.core.step(np.asarray(actions))
