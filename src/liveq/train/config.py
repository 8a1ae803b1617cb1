"""The run config: one YAML file says which env, which agent, how long, and the seed.

```yaml
seed: 0
env:
  id: CartPole-v1          # or liveq/LiveStream-v0
  n_envs: 8
  kwargs: {}               # passed to the env untouched; the env validates them
agent:
  name: dqn                # a name of liveq.train.registry.ALGORITHMS
  dqn:                     # that algorithm's config (here liveq.algos.dqn.DQNConfig)
    lr: 0.001
    hidden_sizes: [256, 256]
train:
  total_env_steps: 100000
  eval_every: 10000
  eval_episodes: 10
  early_stopping_patience: 0
  target_return: null
  checkpoint_every: 10000
  log_every: 1000
  progress: true
```
Step counts are environment steps summed over all parallel envs. Every section and
field may be left out to take its default; an unknown key is a `ConfigError` naming it,
and so is an `env.kwargs` key that the env's constructor does not take.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from liveq.core.config import ConfigError, from_dict, load_yaml, require, to_dict
from liveq.core.errors import CheckpointError
from liveq.train.checkpoint import config_differences
from liveq.train.registry import agent_config_class, drop_retired_keys

# keywords gymnasium.make takes itself, beside the env constructor's
MAKE_KEYWORDS = ("max_episode_steps", "autoreset", "apply_api_compatibility",
                 "disable_env_checker", "render_mode")


@dataclass(kw_only=True)
class EnvConfig:
    """Which environment to train on."""

    id: str = "CartPole-v1"
    """Gymnasium or liveq env id."""
    n_envs: int = 8
    """Parallel environments stepped as one vector env."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments passed to the env unchanged."""

    def validate(self) -> None:
        require(bool(self.id), "id must not be empty")
        require(self.n_envs >= 1, f"n_envs must be at least 1, got {self.n_envs}")
        check_env_kwargs(self.id, self.kwargs)


def _constructor(env_id: str) -> tuple[Any, tuple[str, ...]] | None:
    """The callable `make_vec_env` will call with the kwargs, and keywords taken besides."""
    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        return None  # make_vec_env reports the unknown id
    if spec.vector_entry_point is not None:
        entry, extra = spec.vector_entry_point, ()
    else:
        entry, extra = spec.entry_point, MAKE_KEYWORDS
    if isinstance(entry, str):
        entry = gym.envs.registration.load_env_creator(entry)
    return entry, extra


def check_env_kwargs(env_id: str, kwargs: dict[str, Any]) -> None:
    """Refuse kwargs the env's constructor has no parameter for (`kwargs.<key>`), instead
    of the TypeError the env would raise. An env class with `check_kwargs(kwargs, path)`
    (liveq's LiveStream envs) validates them against its own config, naming full paths;
    other envs taking `**kwargs` check their own when built."""
    found = _constructor(env_id)
    if found is None or not kwargs:
        return
    entry, extra = found
    check = getattr(entry, "check_kwargs", None)
    if check is not None:  # a liveq env parses its kwargs into its own config
        check(kwargs, "kwargs")
        return
    params = inspect.signature(entry).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = sorted({*params, *extra} - {"num_envs", "self"})
    for key in kwargs:
        if key not in known:
            raise ConfigError(f"kwargs.{key}: {env_id} takes no argument '{key}'; it takes "
                              f"{known}")


AgentConfig = agent_config_class()


@dataclass(kw_only=True)
class TrainConfig:
    """How long to train and how often to log, evaluate and checkpoint."""

    total_env_steps: int = 100_000
    """Environment steps (summed over envs) to collect."""
    eval_every: int = 10_000
    """Environment steps between greedy evaluations; 0 = only at the end."""
    eval_episodes: int = 10
    """Episodes per evaluation."""
    early_stopping_patience: int = 0
    """Stop after this many evaluations without a new best return; 0 = never."""
    target_return: float | None = None
    """Stop as soon as an evaluation reaches this mean return; null = never."""
    checkpoint_every: int = 10_000
    """Environment steps between checkpoints/latest.pt; 0 = only at the end."""
    log_every: int = 1_000
    """Environment steps between metrics.jsonl / TensorBoard records."""
    progress: bool = True
    """Show a tqdm progress bar."""
    torch_threads: int = 1
    """PyTorch CPU threads; 1 is fastest for liveq's small networks on a few cores."""

    def validate(self) -> None:
        require(self.total_env_steps >= 1,
                f"total_env_steps must be at least 1, got {self.total_env_steps}")
        for name in ("eval_every", "early_stopping_patience", "checkpoint_every"):
            require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        require(self.eval_episodes >= 1, f"eval_episodes must be at least 1, got "
                f"{self.eval_episodes}")
        require(self.torch_threads >= 1, f"torch_threads must be at least 1, got "
                f"{self.torch_threads}")
        require(self.log_every >= 1, f"log_every must be at least 1, got {self.log_every}")


@dataclass(kw_only=True)
class RunConfig:
    """Everything that defines a training run; saved as config.yaml in the run folder."""

    seed: int = 0
    """Root seed; every RNG of the run is spawned from it."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    """The learner."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The schedule."""

    def validate(self) -> None:
        require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")


def load_run_config(source: str | Path | dict[str, Any]) -> RunConfig:
    """A `RunConfig` from a YAML path or a plain dict; unknown keys raise `ConfigError`."""
    data = source if isinstance(source, dict) else load_yaml(source)
    if "agent" in data:
        data = {**data, "agent": drop_retired_keys(data["agent"])}
    return from_dict(RunConfig, data)


def run_config_dict(config: RunConfig) -> dict[str, Any]:
    """The config as plain data, as config.yaml and checkpoints store it: only the agent
    section in use is written."""
    data = to_dict(config)
    data["agent"] = {"name": config.agent.name,
                     config.agent.name: data["agent"][config.agent.name]}
    return data


def build_differences(saved: dict[str, Any], config: RunConfig) -> list[str]:
    """Where a checkpoint's stored config and `config` differ in what the learner is built
    from (seed, env, agent): dotted keys with both values. Both sides are resolved the
    same way first, so only real changes count; an unreadable stored config is a
    `ConfigError`."""
    resolved, given = run_config_dict(load_run_config(saved)), run_config_dict(config)
    return [diff for key in ("seed", "env", "agent")
            for diff in config_differences({key: resolved[key]}, {key: given[key]})]


def saved_config_changes(checkpoint: dict[str, Any], config: RunConfig,
                         path: str | Path) -> list[str]:
    """`build_differences` between the config stored in the checkpoint at `path` and
    `config`; a stored config this liveq cannot read is a `CheckpointError`."""
    try:
        return build_differences(checkpoint["config"], config)
    except ConfigError as exc:
        raise CheckpointError(f"{path} holds a config this liveq cannot read ({exc})") from None
