"""Trained learners back from checkpoints, with a clear error for each way that fails.

A checkpoint stores the resolved config it was trained with. Loading checks, in order:
the parts are there (`config`, `agent`), the weights are finite, the run folder's
`config.yaml` still says what the checkpoint says (naming each edited key), and every
saved tensor has the shape the config builds (naming the tensor and both shapes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liveq.core.config import ConfigError
from liveq.core.errors import CheckpointError
from liveq.sim.vector import make_vec_env
from liveq.train.checkpoint import load_learner_checkpoint
from liveq.train.config import RunConfig, load_run_config, saved_config_changes
from liveq.train.loop import build_agent


def learner_from(checkpoint: dict[str, Any], config: RunConfig, env: Any,
                 path: str | Path) -> Any:
    """The learner of `config` for `env`'s spaces with the checkpoint's state loaded."""
    agent = build_agent(config, env.single_observation_space, env.single_action_space,
                        config.seed)
    try:
        agent.load_state_dict(checkpoint["agent"])
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the agent state does not fit agent "
                              f"'{config.agent.name}' ({type(exc).__name__}: {exc})") from None
    return agent


def load_agent(path: str | Path) -> tuple[Any, RunConfig]:
    """The agent saved in a checkpoint (best.pt or latest.pt) and its run config."""
    checkpoint = load_learner_checkpoint(path, "loading a learner")
    try:
        config = load_run_config(checkpoint["config"])
    except ConfigError as exc:
        raise CheckpointError(f"{path} holds no usable agent ({exc})") from None
    env = make_vec_env(config.env.id, 1, config.env.kwargs)
    try:
        return learner_from(checkpoint, config, env, path), config
    finally:
        env.close()


def load_run_agent(run: str | Path, checkpoint_name: str, config: RunConfig, env: Any) -> Any:
    """The agent of run folder `run` (whose config.yaml gave `config`) for `env`'s spaces,
    from `checkpoints/<checkpoint_name>.pt`; refuses a config.yaml edited after training."""
    path = Path(run) / "checkpoints" / f"{checkpoint_name}.pt"
    checkpoint = load_learner_checkpoint(path, "loading a learner")
    edited = saved_config_changes(checkpoint, config, path)
    if edited:
        raise CheckpointError(f"{Path(run) / 'config.yaml'} was edited after training: it "
                              f"differs from {path.name} in " + "; ".join(edited))
    return learner_from(checkpoint, config, env, path)
