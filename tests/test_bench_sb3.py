"""`liveq bench sb3`: SB3's like-for-like DQN really has liveq's settings, and the report
has every learner's throughput, curve and time to the threshold; no timing assertions."""

from __future__ import annotations

import dataclasses
import json

import pytest

from liveq.cli.main import main
from liveq.core.errors import ConfigError
from liveq.experiments.bench import liveq_run_config
from liveq.experiments.bench_fair import LEARNERS, _ratios, fair_sizes, reach
from liveq.experiments.bench_sb3 import build_sb3, config_unmatched, sb3_like_kwargs


@pytest.fixture(scope="module")
def demo():
    """The bench's liveq run config at the tiny budget the CLI test uses."""
    return liveq_run_config(fair_sizes(quick=True, steps=1024), eval_every=170)


def assert_matched(model, dqn, n_envs: int) -> None:
    """SB3's model object (not the kwargs we passed it) carries liveq's settings."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    assert isinstance(model.get_env(), DummyVecEnv) and model.n_envs == n_envs
    assert model.batch_size == dqn.batch_size
    # SB3 trains every `train_freq` calls of env.step, each stepping all envs
    assert model.train_freq.unit.value == "step"
    assert model.train_freq.frequency * n_envs == dqn.train_freq
    assert model.gradient_steps == dqn.gradient_steps
    assert model.policy.net_arch == dqn.hidden_sizes
    widths = [m.out_features for m in model.q_net.q_net if hasattr(m, "out_features")]
    assert widths == [*dqn.hidden_sizes, 16]
    assert model.learning_rate == dqn.lr
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(dqn.lr)
    assert model.gamma == dqn.gamma and model.tau == dqn.tau
    assert (model.buffer_size, model.learning_starts) == (dqn.buffer_size, dqn.learning_starts)
    assert model.max_grad_norm == dqn.max_grad_norm
    assert (model.exploration_initial_eps, model.exploration_final_eps,
            model.exploration_fraction) == (dqn.epsilon_start, dqn.epsilon_end,
                                            dqn.epsilon_fraction)
    # a target copy every target_update_interval // n_envs calls, each with
    # gradient_steps / train_freq updates: liveq's interval to within one call
    updates_per_copy = (model.target_update_interval // n_envs * model.gradient_steps
                        / model.train_freq.frequency)
    assert abs(updates_per_copy - dqn.target_update_interval) < dqn.gradient_steps


def test_like_for_like_model_has_the_demo_settings(demo):
    dqn, n_envs = demo.agent.dqn, demo.env.n_envs
    assert (n_envs, dqn.batch_size, dqn.train_freq, dqn.gradient_steps) == (128, 128, 128, 8)
    model = build_sb3(sb3_like_kwargs(dqn, n_envs), demo.env.kwargs, 0, n_envs)
    assert_matched(model, dqn, n_envs)
    model.get_env().close()


def test_like_for_like_follows_a_changed_config(demo):
    """Every setting away from SB3's defaults too, so a dropped keyword cannot pass."""
    dqn = dataclasses.replace(demo.agent.dqn, hidden_sizes=[32, 48], batch_size=16, lr=2e-3,
                              gamma=0.8, train_freq=8, gradient_steps=3,
                              target_update_interval=30, tau=0.5, max_grad_norm=5.0,
                              buffer_size=4_000, learning_starts=64, epsilon_start=0.9,
                              epsilon_end=0.1, epsilon_fraction=0.3)
    model = build_sb3(sb3_like_kwargs(dqn, 4), demo.env.kwargs, 0, 4)
    assert model.train_freq.frequency == 2 and model.target_update_interval == 80
    assert_matched(model, dqn, 4)
    model.get_env().close()


def test_like_for_like_refuses_a_rate_sb3_cannot_train_at(demo):
    with pytest.raises(ConfigError, match="not a multiple of env.n_envs"):
        sb3_like_kwargs(dataclasses.replace(demo.agent.dqn, train_freq=100), demo.env.n_envs)


def test_like_for_like_names_what_sb3_runs_without(demo):
    """SB3 has no n-step targets, reward head, weight average, dueling head, priorities or
    squared loss: the like-for-like run goes without them and the report says which."""
    plain = dataclasses.replace(demo.agent.dqn, n_step=1, reward_head=False,
                                policy_average=0.0, dueling=False, prioritized=False,
                                huber=True)
    assert config_unmatched(plain) == []
    every = dataclasses.replace(plain, n_step=3, reward_head=True, policy_average=0.999,
                                dueling=True, prioritized=True, huber=False)
    names = [line.split(":")[0] for line in config_unmatched(every)]
    assert names == ["n_step", "reward_head", "policy_average", "dueling", "prioritized",
                     "loss"]
    assert sb3_like_kwargs(every, demo.env.n_envs) == sb3_like_kwargs(plain, demo.env.n_envs)
    assert "sum 3 rewards" in config_unmatched(demo.agent.dqn)[0]


def test_reach_is_the_first_evaluation_at_or_above_the_threshold():
    curve = [{"env_steps": 100, "train_seconds": 1.0, "mean": 3.0},
             {"env_steps": 200, "train_seconds": 2.0, "mean": 8.0},
             {"env_steps": 300, "train_seconds": 3.0, "mean": 9.0}]
    assert reach(curve, 8.0) == {"env_steps": 200, "train_seconds": 2.0}
    assert reach(curve, 9.5) is None
    ours = {"env_steps_per_s": 1000.0, "reached": {"train_seconds": 2.0}}
    theirs = {"env_steps_per_s": 250.0, "reached": {"train_seconds": 10.0}}
    assert _ratios(ours, theirs) == {"env_steps_per_s": 4.0, "time_to_threshold": 5.0}
    assert _ratios(ours, {**theirs, "reached": None})["time_to_threshold"] is None


def test_bench_sb3_tiny_budget_reports_matched_learners(tmp_path, capsys, demo):
    out = tmp_path / "sb3.json"
    assert main(["bench", "sb3", "--quick", "--steps", "1024", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    learners = figures["learners"]
    assert set(learners) == set(LEARNERS)
    for name, f in learners.items():
        assert f["env_steps"] >= 1024 and f["updates"] > 0, name
        assert f["env_steps_per_s"] > 0 and f["train_seconds"] > 0, name
        steps = [p["env_steps"] for p in f["curve"]]
        assert len(steps) >= 2 and steps == sorted(steps) and steps[-1] == f["env_steps"]
        assert all(p["ci_low"] <= p["mean"] <= p["ci_high"] for p in f["curve"])
        assert f["return"] == f["curve"][-1]
    ours, like = learners["liveq"]["settings"], learners["sb3_like"]["settings"]
    for key in ("n_envs", "batch_size", "learning_rate", "gamma", "gradient_steps",
                "buffer_size", "learning_starts", "exploration_fraction"):
        assert like[key] == ours[key], key
    assert like["net_arch"] == ours["hidden_sizes"]
    assert like["train_freq"] * like["n_envs"] == ours["train_freq"]
    assert learners["sb3_like"]["updates_per_env_step"] == learners["liveq"][
        "updates_per_env_step"] == 1 / 16
    assert learners["sb3_default"]["settings"]["n_envs"] == 1
    assert figures["threshold"]["return"] == pytest.approx(
        0.8 * learners["liveq"]["return"]["mean"])
    assert learners["liveq"]["reached"] is not None  # 80% of its own last return
    for name in ("sb3_default", "sb3_like"):
        assert figures["ratios"][name]["env_steps_per_s"] == pytest.approx(
            learners["liveq"]["env_steps_per_s"] / learners[name]["env_steps_per_s"])
    assert figures["unmatched"] and isinstance(figures["target"]["met"], bool)
    text = capsys.readouterr().out
    assert "SB3 like-for-like" in text and "time to threshold" in text


def test_bench_sb3_refuses_a_budget_below_one_step(capsys):
    assert main(["bench", "sb3", "--steps", "0"]) == 2
    assert "liveq: error: --steps must be at least 1, got 0" in capsys.readouterr().err
