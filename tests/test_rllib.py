"""RLlib integration: liveq's envs through their vector entry point, masked PPO on a local
Ray instance with two env runners, judged by liveq's evaluator.

Skipped only where ray[rllib] cannot be imported (it pins gymnasium 1.2.2; install it
with `pip install -e ".[ray]"`), with the reason in pytest's summary.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip(
    "ray.rllib", reason="ray[rllib] is not installed: pip install -e '.[ray]' to test the "
    "RLlib integration")

import ray  # noqa: E402
import torch  # noqa: E402
from ray.rllib.utils.torch_utils import FLOAT_MIN  # noqa: E402

from liveq.core.errors import ConfigError  # noqa: E402
from liveq.experiments.rllib_env import (  # noqa: E402
    create_vector_env,
    mask_logits,
    register_rllib_envs,
)
from liveq.experiments.rllib_ppo import (  # noqa: E402
    RLlibRunSettings,
    build_algorithm,
    judge,
    main,
    train,
)
from liveq.sim.livestream import LiveStreamVectorEnv  # noqa: E402
from liveq.train.config import load_run_config  # noqa: E402

SMALL = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2}


def test_masked_logits_are_float_min_and_a_row_without_candidates_stays_finite():
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.5, -0.5, 0.0]])
    mask = torch.tensor([[True, False, True], [False, False, False]])
    out = mask_logits(logits, mask)
    assert torch.equal(out[0], torch.tensor([1.0, FLOAT_MIN, 3.0]))
    probs = torch.softmax(out, dim=1)
    assert probs[0, 1].item() == 0.0
    assert torch.allclose(probs[1], torch.full((3,), 1 / 3))


def test_creator_builds_one_batched_vector_env_and_refuses_single_envs():
    env = create_vector_env("liveq/LiveStream-v0", {"num_envs": 4, **SMALL})
    assert isinstance(env.unwrapped, LiveStreamVectorEnv) and env.num_envs == 4
    env.close()
    with pytest.raises(ConfigError, match="vector_entry_point"):
        create_vector_env("liveq/LiveStream-v0", dict(SMALL))


def test_settings_that_would_hang_ray_are_refused_before_it_starts(capsys):
    assert main(["--config", "livestream_small", "--env-runners", "3", "--num-cpus", "2"]) == 2
    assert "3 env runners need 3 CPUs" in capsys.readouterr().err
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.timeout(600)
def test_ppo_trains_on_two_env_runners_with_valid_masked_actions(local_ray):
    run = load_run_config({"seed": 0, "env": {"id": "liveq/LiveStream-v0", "n_envs": 8,
                                              "kwargs": SMALL},
                           "agent": {"name": "ppo", "ppo": {"n_epochs": 2}}})
    settings = RLlibRunSettings(env_runners=2, train_batch=256, episodes=64, iterations=2)
    assert "liveq/LiveStream-v0" in register_rllib_envs()
    algo = build_algorithm(run, settings)
    try:
        runners = algo.env_runner_group
        kinds = runners.foreach_env_runner(lambda r: type(r.env.unwrapped).__name__,
                                           local_env_runner=False)
        assert kinds == ["LiveStreamVectorEnv"] * 2  # one batched env per runner
        before = [p.detach().clone() for p in algo.get_module().parameters()]
        history = train(algo, settings.iterations, echo=False)
        assert [steps for steps, _ in history][-1] >= 2 * settings.train_batch
        after = list(algo.get_module().parameters())
        assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
        episodes = [e for batch in runners.foreach_env_runner(
            lambda r: r.sample(num_timesteps=400, explore=True), local_env_runner=False)
            for e in batch if len(e)]
        # each step's mask (the observation the action answered) and the action taken
        masks = np.concatenate([e.get_observations(slice(0, len(e)))["mask"]
                                for e in episodes]).astype(bool)
        actions = np.concatenate([e.get_actions() for e in episodes])
        assert len(actions) >= 400 and (~masks).sum() > 0  # masks were there to be broken
        assert masks[np.arange(len(actions)), actions].all()
        policy = algo.get_module().greedy_policy()
    finally:
        algo.stop()
    results = judge({"rllib-ppo": policy}, run, settings)
    assert set(results) == {"rllib-ppo", "popular"}
    assert np.isfinite(results["rllib-ppo"]["return"]["mean"])
