"""The world family and the robustness runner, on a tiny budget."""

import json

import pytest

from liveq.core.config import ConfigError
from liveq.core.stats import mean_ci
from liveq.experiments import robustness
from liveq.experiments.world_family import WORLDS, world_config
from liveq.sim.config import LiveStreamConfig
from liveq.train.config import load_run_config


def test_every_world_is_a_valid_run_config_that_differs_from_the_default():
    default = load_run_config(world_config("default")).env.kwargs
    for name in WORLDS:
        config = load_run_config(world_config(name))
        LiveStreamConfig(**{k: v for k, v in config.env.kwargs.items() if k != "rewards"})
        if name != "default":
            assert config.env.kwargs != default, name
    clicks = world_config("clicks_only")["env"]["kwargs"]
    assert clicks["rewards"]["click"] == 1.0 and clicks["rewards"]["watch_minute"] == 0.0
    assert clicks["fatigue_weight"] == 0.0 and clicks["clickbait_share"] == 0.0


def test_unknown_world_and_bad_override_are_refused():
    with pytest.raises(ConfigError, match="unknown world 'moon'"):
        world_config("moon")
    with pytest.raises(ConfigError, match="--dqn expects key=value"):
        robustness.parse_overrides(["gamma"])
    assert robustness.parse_overrides(["gamma=0.5", "reward_head=true"]) == {
        "gamma": 0.5, "reward_head": True}


def test_myopic_twin_shares_the_overrides_with_gamma_pinned():
    dqn = robustness.learner_config("watch_only", "dqn", 3, 1024, {"policy_average": 0.9})
    twin = robustness.learner_config("watch_only", "myopic", 3, 1024, {"policy_average": 0.9})
    shipped = world_config("watch_only")["agent"]["dqn"]["gamma"]
    assert dqn.agent.settings.gamma == shipped > 0 and twin.agent.settings.gamma == 0.0
    assert twin.agent.settings.policy_average == 0.9 and twin.seed == 3
    assert dqn.train.total_env_steps == 1024 and dqn.train.eval_every == 204


def test_runner_table_on_a_tiny_budget(tmp_path):
    dqn = {"learning_starts": 128, "gradient_steps": 1, "policy_average": 0.5,
           "reward_head": True}
    results = {"clicks_only": robustness.run_world(
        "clicks_only", [0, 1], steps=256, episodes=64, out=tmp_path, checkpoint="latest",
        dqn=dqn)}
    r = results["clicks_only"]
    assert len(r["dqn"]["returns"]) == 2 and len(r["myopic"]["returns"]) == 2
    for name in ("dqn", "myopic", "oracle", "popular"):
        assert r[name]["ci_low"] <= r[name]["mean"] <= r[name]["ci_high"]
    assert r["oracle"]["mean"] > 0
    diff = [d - m for d, m in zip(r["dqn"]["returns"], r["myopic"]["returns"], strict=True)]
    assert r["dqn_minus_myopic"]["mean"] == pytest.approx(sum(diff) / 2)
    table = robustness.table(results)
    assert table.splitlines()[0].startswith(
        "| world | dqn | myopic | oracle | popular | dqn - myopic, paired | dqn - oracle "
        "| verdict |")
    gap = r["dqn_minus_oracle"]
    assert gap["mean"] == pytest.approx(r["dqn"]["mean"] - r["oracle"]["mean"])
    assert gap["ci_low"] < gap["mean"] < gap["ci_high"]
    assert table.splitlines()[2].startswith("| clicks_only |")
    assert (tmp_path / "clicks_only" / "dqn" / "seed1" / "checkpoints" / "latest.pt").exists()


def test_verdict_reads_the_paired_interval_and_the_oracle_difference():
    r = {"dqn_minus_oracle": {"mean": 2.0, "ci_low": 0.5, "ci_high": 3.5},
         "dqn_minus_myopic": {"mean": 4.0, "ci_low": 3.0, "ci_high": 5.0}}
    assert robustness.verdict(r) == "above myopic, above oracle"
    r["dqn_minus_oracle"] = {"mean": 0.2, "ci_low": -1.0, "ci_high": 1.4}
    r["dqn_minus_myopic"] = {"mean": -0.5, "ci_low": -1.0, "ci_high": 0.2}
    assert robustness.verdict(r) == "level with myopic, level with oracle"
    r["dqn_minus_oracle"] = {"mean": -2.0, "ci_low": -3.0, "ci_high": -1.0}
    r["dqn_minus_myopic"] = {"mean": -2.0, "ci_low": -3.0, "ci_high": -1.0}
    assert robustness.verdict(r) == "below myopic, below oracle"
    nan = float("nan")
    r |= {a: {"mean": nan, "ci_low": nan, "ci_high": nan, "returns": [7.5, 8.5]}
          for a in ("dqn", "myopic", "oracle", "popular")}
    row = robustness.table({"w": r}).splitlines()[2]
    assert "| -2.00 [-3.00, -1.00] | -2.00 [-3.00, -1.00] | below myopic, below oracle |" in row


def test_oracle_difference_is_clear_where_overlapping_intervals_are_not():
    """Overlapping 95% intervals can hide a clear difference: Welch's interval finds it."""
    dqn = {"mean": 12.1, "ci_low": 11.5, "ci_high": 12.7, "n": 10}
    oracle = {"mean": 11.1, "ci_low": 10.5, "ci_high": 11.7, "n": 1000}
    assert dqn["ci_low"] < oracle["ci_high"]
    gap = robustness.oracle_difference(dqn, oracle)
    assert gap["mean"] == pytest.approx(1.0)
    assert 0.0 < gap["ci_low"] < 1.0 < gap["ci_high"]
    assert robustness.verdict({"dqn_minus_oracle": gap}) == "above oracle"
    wide = robustness.oracle_difference({**dqn, "ci_low": 9.1, "ci_high": 15.1}, oracle)
    assert wide["ci_low"] < 0 < wide["ci_high"]


def test_ppo_takes_the_shared_dqn_settings_then_its_own_overrides():
    ppo = robustness.learner_config("default", "ppo", 2, 1024, {"gamma": 0.9, "lr": 1e-3},
                                    "latest", {"n_epochs": 3})
    settings = ppo.agent.settings
    assert ppo.agent.name == "ppo" and ppo.seed == 2
    assert (settings.gamma, settings.lr, settings.n_epochs) == (0.9, 1e-3, 3)
    assert settings.hidden_sizes == world_config("default")["agent"]["dqn"]["hidden_sizes"]
    with pytest.raises(ConfigError, match="unknown learner 'sarsa'"):
        robustness.learner_config("default", "sarsa", 0, 1024, {})


def test_ppo_runs_through_the_runner_and_gets_its_columns(tmp_path):
    ppo = {"n_steps": 4, "n_epochs": 1, "n_minibatches": 1}
    results = {"clicks_only": robustness.run_world(
        "clicks_only", [0], steps=1024, episodes=64, out=tmp_path, checkpoint="latest",
        learners=("ppo",), ppo=ppo)}
    assert len(results["clicks_only"]["ppo"]["returns"]) == 1
    again = robustness.run_world("clicks_only", [0], steps=1024, episodes=64, out=tmp_path,
                                 checkpoint="latest", learners=("ppo",), ppo=ppo,
                                 eval_seed=1)
    assert again["ppo"]["returns"] != results["clicks_only"]["ppo"]["returns"]
    lines = robustness.table(results).splitlines()
    assert "| ppo |" in lines[0] and lines[0].endswith("| ppo per seed |")
    assert "| ppo |" not in robustness.table({"w": {}}).splitlines()[0]


def test_from_json_rescores_saved_results_without_counts(tmp_path, capsys):
    saved = {"default": {
        "dqn": {"returns": [12.0, 13.0, 11.0], "mean": 12.0, "ci_low": 9.52, "ci_high": 14.48},
        "oracle": {"returns": [], "mean": 11.0, "ci_low": 10.4, "ci_high": 11.6}}}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(saved))
    robustness.main(["--from-json", str(path)])
    row = capsys.readouterr().out.splitlines()[2]
    gap = robustness.oracle_difference({**saved["default"]["dqn"], "n": 3},
                                       {**saved["default"]["oracle"], "n": 1000})
    assert f"| {gap['mean']:.2f} [{gap['ci_low']:.2f}, {gap['ci_high']:.2f}] |" in row
    assert "level with oracle" in row
    with pytest.raises(ConfigError, match="missing.json"):
        robustness.run(["--from-json", str(tmp_path / "missing.json")])
    with pytest.raises(SystemExit, match="robustness: error: --against .*missing.json"):
        robustness.main(["--from-json", str(path), "--against", str(tmp_path / "missing.json")])


def test_against_pairs_saved_results_by_seed(tmp_path, capsys):
    def saved(returns, seeds=None):
        entry = {"returns": returns, "mean": sum(returns) / len(returns), "ci_low": 0.0,
                 "ci_high": 99.0, **({"seeds": seeds} if seeds else {})}
        return {"default": {"dqn": entry,
                            "oracle": {"returns": [], "mean": 9.0, "ci_low": 8.0,
                                       "ci_high": 10.0}}}
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    new.write_text(json.dumps(saved([12.0, 15.0, 13.0], [2, 0, 1])))
    old.write_text(json.dumps(saved([10.0, 11.0, 12.0, 50.0], [0, 1, 2, 3])))
    robustness.main(["--from-json", str(new), "--against", str(old)])
    row = capsys.readouterr().out.splitlines()[2]
    by_seed = mean_ci([12.0 - 12.0, 15.0 - 10.0, 13.0 - 11.0])  # not (2, 4, 1) in order
    assert f"| {by_seed[0]:.2f} [{by_seed[1]:.2f}, {by_seed[2]:.2f}] | 3 |" in row
    old.write_text(json.dumps(saved([10.0, 11.0])))
    robustness.main(["--from-json", str(new), "--against", str(old)])
    assert "| 3.00 [-9.71, 15.71] | 2 |" in capsys.readouterr().out  # no seeds: in order


def test_from_json_merges_one_files_dqn_with_anothers_twin(tmp_path, capsys):
    oracle = {"returns": [], "mean": 9.0, "ci_low": 8.0, "ci_high": 10.0}
    dqn = {"returns": [12.0, 15.0, 13.0], "mean": 40 / 3, "ci_low": 9.0, "ci_high": 17.0,
           "seeds": [0, 1, 2]}
    twin = {"returns": [11.0, 10.0], "mean": 10.5, "ci_low": 4.0, "ci_high": 17.0,
            "seeds": [1, 0]}
    (tmp_path / "a.json").write_text(json.dumps({"w": {"dqn": dqn, "oracle": oracle}}))
    (tmp_path / "b.json").write_text(json.dumps({"w": {"myopic": twin, "oracle": oracle}}))
    (tmp_path / "bad.json").write_text("[1, 2]")
    robustness.main(["--from-json", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    paired = mean_ci([12.0 - 10.0, 15.0 - 11.0])
    row = capsys.readouterr().out.splitlines()[2]
    assert f"| {paired[0]:.2f} [{paired[1]:.2f}, {paired[2]:.2f}] |" in row
    with pytest.raises(SystemExit, match="bad.json: cannot read results"):
        robustness.main(["--from-json", str(tmp_path / "bad.json")])
