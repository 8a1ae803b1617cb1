"""liveq tune: the space format, a real small search, resuming, pruning, and Ray Tune."""

from __future__ import annotations

import csv
import json
import sys

import optuna
import pytest

import liveq.experiments
from liveq.cli.main import main
from liveq.core.config import ConfigError, load_yaml
from liveq.core.errors import NonFiniteError, UsageError
from liveq.experiments import tune_objective
from liveq.experiments.tune import TuneConfig, build_search, open_study, tune
from liveq.experiments.tune_space import check_against, decode, load_space, suggest
from liveq.train.config import load_run_config, run_config_dict

SMALL = "livestream_small"
STEPS = 1024  # 64 vector steps of 16 sessions; one evaluation, at the end
WORLDS = "default,clicks_only"


def _space(tmp_path, text: str):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_shipped_space_draws_values_the_config_takes():
    params = load_space("space_dqn")
    assert [p.key for p in params][:2] == ["agent.dqn.lr", "agent.dqn.gamma"]
    lr = params[0]
    assert (lr.kind, lr.low, lr.high, lr.log, lr.line) == ("float", 1e-4, 3e-3, True, 3)
    config = run_config_dict(load_run_config(load_yaml(SMALL)))
    check_against(params, config, load_run_config)
    fixed = optuna.trial.FixedTrial({
        "agent.dqn.lr": 1e-3, "agent.dqn.gamma": 0.9, "agent.dqn.target_update_interval": 300,
        "agent.dqn.epsilon_fraction": 0.2, "agent.dqn.n_step": 3, "agent.dqn.batch_size": 128,
        "agent.dqn.hidden_sizes": "[128, 128]", "agent.dqn.dueling": True})
    values = suggest(fixed, params)
    assert values["agent.dqn.hidden_sizes"] == [128, 128]  # stored as JSON text, decoded
    assert values["agent.dqn.batch_size"] == 128 and values["agent.dqn.n_step"] == 3
    assert decode(params, {"agent.dqn.hidden_sizes": "[64, 64]"}) == {
        "agent.dqn.hidden_sizes": [64, 64]}


@pytest.mark.parametrize("text, message", [
    ("agent.dqn.gamma: {type: float, low: 0.9, high: 0.8}",
     ":1: agent.dqn.gamma: low (0.9) is above high (0.8)"),
    ("# a comment\nagent.dqn.lr: {type: float, low: 0, high: 0.1, log: true}",
     ":2: agent.dqn.lr: a log scale needs low > 0"),
    ("agent.dqn.lr: {type: real, low: 0.1, high: 0.2}", "type must be one of"),
    ("agent.dqn.lr: {type: float, low: 0.1, hihg: 0.2}", "unknown field 'hihg'"),
    ("agent.dqn.lr: {type: float, low: 0.1}", "a float range needs 'high'"),
    ("agent.dqn.lr: {type: float, low: 0.1, high: 0.2, steps: 2}", "unknown field 'steps'"),
    ("agent.dqn.n_step: {type: int, low: 1, high: 2.5}", "an int range needs whole numbers"),
    ("agent.dqn.lr: {type: float, low: 0.1, high: 0.2, log: true, step: 0.01}",
     "choose log or step"),
    ("agent.dqn.dueling: {type: categorical, choices: []}", "non-empty list 'choices'"),
    ("agent.dqn.batch_size: {type: categorical, choices: [64, 64]}", "repeat a value"),
    ("env.kwargs.n_streamers: {type: int, low: 100, high: 200}",
     ":1: env.kwargs.n_streamers: env is not searchable"),
    ("seed: {type: int, low: 0, high: 9}", "seed is not searchable"),
    ("agent.dqn.lr: {type: float, low: 0.1, high: 0.2}\n"
     "agent.dqn.lr: {type: float, low: 0.1, high: 0.3}", ":2: agent.dqn.lr: given twice "
     "(first on line 1)"),
    ("agent.dqn.lr: 0.001", "expected a mapping"),
    ("- agent.dqn.lr", "expected a mapping of run-config keys"),
    ("", "expected a mapping of run-config keys"),
])
def test_bad_space_files_are_refused_naming_line_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as exc:
        load_space(_space(tmp_path, text))
    assert message in str(exc.value) and "space.yaml" in str(exc.value)


@pytest.mark.parametrize("text, message", [
    ("agent.dqn.lrr: {type: float, low: 0.1, high: 0.2}",
     "space.yaml:1: agent.dqn.lrr: no such key in the run config (did you mean 'agent.dqn.lr'?)"),
    ("agent.ppo.lr: {type: float, low: 0.1, high: 0.2}", "agent.ppo.lr: no such key"),
    ("agent.dqn: {type: categorical, choices: [1, 2]}", "names a section, not a setting"),
    ("agent.dqn.batch_size: {type: float, low: 32, high: 256}",
     "agent.dqn.batch_size: the setting is an integer (64); use type: int"),
    ("agent.dqn.gamma: {type: float, low: 0.5, high: 1.5}",
     "agent.dqn.gamma: the run config refuses 1.5 (agent.dqn.gamma must be in [0, 1]"),
    ("agent.dqn.hidden_sizes: {type: categorical, choices: [[64], [0, 8]]}",
     "refuses [0, 8]"),
])
def test_space_keys_are_checked_against_the_run_config(tmp_path, text, message):
    config = run_config_dict(load_run_config(load_yaml(SMALL)))
    with pytest.raises(ConfigError) as exc:
        check_against(load_space(_space(tmp_path, text)), config, load_run_config)
    assert message in str(exc.value)


def _cfg(out, **kw) -> TuneConfig:
    base = {"config": SMALL, "worlds": WORLDS.split(","), "steps": STEPS, "out": str(out)}
    return TuneConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory):
    """Two trials through the CLI, an interrupted third left running, then resumed to 3."""
    out = tmp_path_factory.mktemp("tune")
    assert main(["tune", "--config", SMALL, "--worlds", WORLDS, "--trials", "2",
                 "--steps", str(STEPS), "--out", str(out), "--no-prune"]) == 0
    first = json.loads((out / "trials.json").read_text())
    cfg = _cfg(out, trials=3)
    study, _ = open_study(cfg, build_search(cfg))
    left = study.ask()  # a process stopped here: the trial stays RUNNING in the study
    suggest(left, build_search(cfg).params)
    summary = tune(cfg)
    return out, first, summary, left


def test_search_writes_trials_best_config_and_plot(search_dir):
    out, first, _, _ = search_dir
    assert first["counts"] == {"complete": 2}
    best = load_run_config(out / "best.yaml")  # ready for liveq train --config
    trial = max(first["trials"], key=lambda t: t["objective"])
    assert best.agent.dqn.lr == pytest.approx(trial["params"]["agent.dqn.lr"])
    assert best.train.total_env_steps == STEPS and best.env.kwargs["n_streamers"] == 200
    for t in first["trials"]:
        worlds = t["worlds"]
        assert list(worlds) == ["default", "clicks_only"]
        for w in worlds.values():
            assert w["score"] == pytest.approx(w["return"] / w["baseline_return"])
            assert load_run_config(f"{w['run']}/config.yaml").agent.dqn.gamma == \
                pytest.approx(t["params"]["agent.dqn.gamma"])
        assert t["objective"] == pytest.approx(sum(w["score"] for w in worlds.values()) / 2)
    clicks = load_run_config(f"{first['trials'][0]['worlds']['clicks_only']['run']}/config.yaml")
    assert clicks.env.kwargs["rewards"]["click"] == 1.0  # the world's overlay, not the base
    baselines = json.loads((out / "baselines.json").read_text())
    assert sorted(k.split("/")[0] for k in baselines) == ["clicks_only", "default"]
    assert (out / "search.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_runs_only_the_missing_trial_again_with_its_settings(search_dir):
    out, first, summary, left = search_dir
    trials = {t["number"]: t for t in summary["trials"]}
    assert summary["counts"] == {"complete": 3, "fail": 1}
    assert trials[left.number]["state"] == "fail"  # marked, not counted as finished
    (retry,) = [t for t in trials.values() if t["number"] > left.number]
    assert retry["retry_of"] == left.number and retry["state"] == "complete"
    assert retry["params"] == decode(build_search(_cfg(out)).params, left.params)
    for old in first["trials"]:  # finished trials are kept, not run again
        assert trials[old["number"]]["objective"] == old["objective"]
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["state"] for r in rows] == ["complete", "complete", "fail", "complete"]
    assert "score_clicks_only" in rows[0] and rows[0]["agent.dqn.hidden_sizes"].startswith("[")
    again = tune(_cfg(out, trials=3))  # already complete: nothing more runs
    assert len(again["trials"]) == 4


def test_resume_refuses_a_study_made_by_another_search(search_dir, capsys):
    out = search_dir[0]
    assert main(["tune", "--config", SMALL, "--worlds", "default", "--trials", "3",
                 "--steps", str(STEPS), "--out", str(out)]) == 2
    assert "made with another worlds" in capsys.readouterr().err


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_a_pruner_stops_the_training_at_the_first_evaluation(tmp_path):
    summary = tune(_cfg(tmp_path, worlds=[], trials=1, steps=2000), pruner=AlwaysPrune())
    (trial,) = summary["trials"]
    assert trial["state"] == "pruned" and summary["best"] is None
    assert trial["objective"] is None and trial["worlds"] == {}
    assert [step for step, _ in trial["intermediate"]] == [1]  # eval_every 1500
    lines = (tmp_path / "trials" / "0000" / "default" / "metrics.jsonl").read_text()
    assert max(json.loads(line)["env_steps"] for line in lines.splitlines()) < 2000
    assert not (tmp_path / "best.yaml").exists()


def test_no_prune_gives_the_study_a_pruner_that_never_prunes(tmp_path):
    cfg = _cfg(tmp_path, worlds=[], prune=False)
    study, _ = open_study(cfg, build_search(cfg))
    assert isinstance(study.pruner, optuna.pruners.NopPruner)
    cfg = _cfg(tmp_path / "pruned", worlds=[])
    assert isinstance(open_study(cfg, build_search(cfg))[0].pruner,
                      optuna.pruners.MedianPruner)


def test_a_diverged_world_scores_zero(tmp_path, monkeypatch):
    def diverge(*args, **kwargs):
        raise NonFiniteError("training stopped at env step 16: non-finite weights")

    monkeypatch.setattr(tune_objective, "train", diverge)
    search = build_search(_cfg(tmp_path, worlds=[]))
    result = tune_objective.run_trial(search, {}, 0, lambda step, value: None)
    assert result["objective"] == 0.0
    assert "non-finite" in result["worlds"]["default"]["diverged"]


def test_cli_refuses_bad_arguments_in_one_line(tmp_path, capsys):
    args = ["tune", "--config", SMALL, "--out", str(tmp_path)]
    assert main([*args, "--address", "auto"]) == 2
    assert "address is only used with backend ray" in capsys.readouterr().err
    assert main([*args, "--worlds", "default,mars"]) == 2
    assert "unknown world 'mars'" in capsys.readouterr().err
    assert main([*args, "--config", "ads_small"]) == 2
    assert "needs a liveq/LiveStream env" in capsys.readouterr().err


def test_ray_backend_without_ray_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    monkeypatch.delitem(sys.modules, "liveq.experiments.tune_ray", raising=False)
    monkeypatch.delattr(liveq.experiments, "tune_ray", raising=False)  # if imported before
    with pytest.raises(UsageError, match=r"pip install 'liveq\[ray\]'"):
        tune(_cfg(tmp_path, backend="ray"))
    assert not (tmp_path / "study.db").exists()


def test_ray_backend_runs_the_same_trials_on_a_local_ray(search_dir, tmp_path):
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        print(f"skipping the Ray Tune test: import ray failed ({exc})")
        pytest.skip(f"import ray failed: {exc}")
    summary = tune(_cfg(tmp_path, trials=2, backend="ray"))
    assert summary["counts"] == {"complete": 2}
    load_run_config(tmp_path / "best.yaml")
    optuna_trials = {t["number"]: t for t in search_dir[1]["trials"]}
    for t in summary["trials"]:  # same seed, sampler and objective: the same trials
        assert t["params"] == optuna_trials[t["number"]]["params"]
        assert t["objective"] == pytest.approx(optuna_trials[t["number"]]["objective"])
        assert [step for step, _ in t["intermediate"]] == [1, 2]  # one evaluation a world
