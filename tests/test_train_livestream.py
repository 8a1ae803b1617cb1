"""Reproducibility of DQN training on the LiveStream simulator itself."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from liveq.train import load_agent, load_run_config, train

SMALL = Path(__file__).resolve().parents[1] / "configs" / "livestream_small.yaml"


def small_config(steps: int):
    data = yaml.safe_load(SMALL.read_text())
    data["train"].update(total_env_steps=steps, eval_every=0, checkpoint_every=0,
                         eval_episodes=16, progress=False)
    data["agent"]["dqn"].update(learning_starts=100, train_freq=8)
    return load_run_config(data)


def weights(run: Path) -> dict[str, torch.Tensor]:
    agent, _ = load_agent(run / "checkpoints" / "latest.pt")
    return agent.state_dict()["q_net"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), key


def test_same_seed_trains_identical_weights(tmp_path):
    train(small_config(480), tmp_path / "a")
    train(small_config(480), tmp_path / "b")
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))


def test_resume_equals_uninterrupted_run(tmp_path):
    train(small_config(640), tmp_path / "straight")
    train(small_config(320), tmp_path / "split")
    train(small_config(640), tmp_path / "split", resume=True)
    assert_same_weights(weights(tmp_path / "straight"), weights(tmp_path / "split"))
