"""Training: the algorithm registry, run configs, the training loops, checkpoints, run folders."""

from liveq.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from liveq.train.config import RunConfig, load_run_config
from liveq.train.evaluate import Evaluate, make_gym_evaluator
from liveq.train.loop import torch_threads, train
from liveq.train.registry import (
    ALGORITHMS,
    Algorithm,
    Learner,
    OnlineLearner,
    algorithm,
    build_learner,
    derive_config,
)
from liveq.train.restore import load_agent

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "CheckpointError",
    "Evaluate",
    "Learner",
    "OnlineLearner",
    "RunConfig",
    "algorithm",
    "build_learner",
    "derive_config",
    "load_agent",
    "load_checkpoint",
    "load_run_config",
    "make_gym_evaluator",
    "save_checkpoint",
    "torch_threads",
    "train",
]
