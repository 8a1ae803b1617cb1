"""Reproducibility of DQN training on the LiveStream simulator itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from liveq.core.config import shipped_configs
from liveq.eval.online import make_online_evaluator
from liveq.train import load_agent, load_run_config, train

SMALL = shipped_configs()["livestream_small"]


def small_config(steps: int):
    data = yaml.safe_load(SMALL.read_text())
    data["train"].update(total_env_steps=steps, eval_every=160, checkpoint_every=320,
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


def test_resume_after_a_crash_equals_uninterrupted_run(tmp_path):
    config = small_config(640)
    evaluate = make_online_evaluator(config.env.id, config.env.kwargs, 16)
    train(config, tmp_path / "straight", evaluate=evaluate)
    calls = []

    def crash_after_checkpoint(policy, n_episodes, seed):
        calls.append(seed)
        if len(calls) == 3:  # evaluations at 160 and 320 (checkpoint), crash at 480
            raise KeyboardInterrupt
        return evaluate(policy, n_episodes, seed)

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "split", evaluate=crash_after_checkpoint)
    train(config, tmp_path / "split", resume=True, evaluate=evaluate)
    assert_same_weights(weights(tmp_path / "straight"), weights(tmp_path / "split"))
