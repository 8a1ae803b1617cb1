"""Fixtures several test modules share (trained once per test session)."""

from __future__ import annotations

import pytest
import yaml

from liveq.cli.main import main
from liveq.core.config import load_yaml, resolve_config

TINY_STEPS = 1536  # env steps of each tiny run: three evaluations, seconds to train


@pytest.fixture(scope="session")
def tiny_dqn_runs(tmp_path_factory):
    """A folder holding two seeds of DQN on the small world (`dqn-s0`, `dqn-s1`), trained
    by `liveq train` for a few thousand steps with an evaluation every 512 steps."""
    root = tmp_path_factory.mktemp("tiny-runs")
    config = load_yaml(resolve_config("livestream_small"))
    config["train"].update(total_env_steps=TINY_STEPS, eval_every=512, eval_episodes=32,
                           checkpoint_every=TINY_STEPS, log_every=512)
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    runs = root / "runs"
    for seed in (0, 1):
        assert main(["train", "--config", str(path), "--out", str(runs / f"dqn-s{seed}"),
                     "--seed", str(seed), "--no-progress"]) == 0
    return runs
