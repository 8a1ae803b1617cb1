"""What the scenario envs share: config building from env kwargs, one
`gymnasium.vector.VectorEnv` over a batched numpy core, and exact state snapshots
(`core_state`, `load_core_state`) so training on a scenario resumes bit for bit.

A scenario (AdPlacement, Ecommerce, LiveRoom) has a config dataclass, a core with
`reset(seed) -> obs` and `step(actions) -> (obs, reward, terminated, truncated, info)`,
and a function giving its single-env spaces; `CoreVectorEnv` wires them together.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
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


@dataclass(frozen=True, kw_only=True)
class SessionMetrics:
    """What `liveq compare` reports per episode of a scenario, read from the step `info`
    (the LiveStream env keeps its own fixed set in `liveq.eval.online`). Every metric is a
    mean over episodes with a 95% interval; `return` and `length` always come first."""

    sums: tuple[tuple[str, str], ...] = ()
    """(metric, info key): the episode's total of that info entry (booleans count 1)."""
    ratios: tuple[tuple[str, str, str], ...] = ()
    """(metric, numerator, denominator): a ratio of two `sums` metrics' totals over all
    episodes (delta-method interval), such as clicks per impression."""
    step_means: tuple[tuple[str, str], ...] = ()
    """(metric, info key): the mean of that info entry over the episode's steps."""
    finals: tuple[tuple[str, str], ...] = ()
    """(metric, info key): the value of that info entry at the episode's last step."""
    order: tuple[str, ...] = ()
    """Column order of the table (metrics not named here follow)."""


class CoreVectorEnv(gym.vector.VectorEnv, abc.ABC):
    """`num_envs` slots of a scenario stepped together by its numpy core; Gymnasium's
    `NEXT_STEP` autoreset (the core restarts a slot that ended on the next `step`).

    Subclasses set `config_class`, `core_class` and `spaces` (config -> single-env
    observation and action spaces); `reset(seed=s)` seeds `np_random` and draws the core's
    seed from it, as the single envs do, so a batch of one repeats the single env.
    `get_state()`/`set_state()` snapshot and restore the core exactly, so a training run
    on a scenario resumes bit for bit, as on LiveStream.
    """

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}
    config_class: type
    core_class: type
    seed_bound: int = SEED_BOUND
    session_metrics: SessionMetrics = SessionMetrics()

    @staticmethod
    @abc.abstractmethod
    def spaces(config: Any) -> tuple[gym.Space, gym.Space]:
        """(single observation space, single action space) of `config`: the hook every
        scenario env defines (AdPlacement, Ecommerce, LiveRoom); a subclass without it
        cannot be instantiated (Python's TypeError names the method)."""

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

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit (see `set_state`): the core's arrays,
        counters and random generator, as arrays and plain values a checkpoint can hold."""
        return core_state(self.core)

    def set_state(self, state: dict[str, Any]) -> Any:
        """Restore a `get_state` snapshot; returns the observation at that point."""
        load_core_state(self.core, state)
        return self.core.observe()


def core_state(core: Any) -> dict[str, Any]:
    """A copy of a scenario core's state: every numpy array (also inside dicts), number and
    generator among its attributes; the config and the batch size are not state."""
    state: dict[str, Any] = {"n": core.n, "arrays": {}, "tables": {}, "numbers": {},
                             "generators": {}}
    for name, value in vars(core).items():
        if isinstance(value, np.ndarray):
            state["arrays"][name] = value.copy()
        elif isinstance(value, np.random.Generator):
            state["generators"][name] = value.bit_generator.state
        elif isinstance(value, dict) and all(isinstance(v, np.ndarray) for v in value.values()):
            state["tables"][name] = {k: v.copy() for k, v in value.items()}
        elif isinstance(value, (int, float, np.integer, np.floating)) and name != "n":
            state["numbers"][name] = value.item() if isinstance(value, np.generic) else value
    return state


def load_core_state(core: Any, state: dict[str, Any]) -> None:
    """Put a `core_state` snapshot back into `core` (built with the same config and batch)."""
    if int(state["n"]) != core.n:
        raise ValueError(f"the saved state has {state['n']} slots, this env {core.n}")
    for name, value in state["arrays"].items():
        setattr(core, name, np.array(value, copy=True))
    for name, table in state["tables"].items():
        setattr(core, name, {k: np.array(v, copy=True) for k, v in table.items()})
    for name, value in state["numbers"].items():
        setattr(core, name, value)
    for name, value in state["generators"].items():
        generator = np.random.default_rng()
        generator.bit_generator.state = value
        setattr(core, name, generator)
