"""Training: run configs, the collect -> replay -> update loop, checkpoints, run folders."""

from liveq.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from liveq.train.config import RunConfig, load_run_config
from liveq.train.evaluate import Evaluate, make_gym_evaluator
from liveq.train.loop import load_agent, train

__all__ = [
    "CheckpointError",
    "Evaluate",
    "RunConfig",
    "load_agent",
    "load_checkpoint",
    "load_run_config",
    "make_gym_evaluator",
    "save_checkpoint",
    "train",
]
