"""Hostile and careless command lines: each ends in one line `liveq: error: ...`, exit 2.

Every class of bad input named in the architecture issue has a case here or in the test
module of the part that checks it (logs: test_data_sanity, outputs of the log commands:
test_offline_outputs, checkpoints and training: test_train, configs: test_core_config).
"""

from __future__ import annotations

import json
import math

import pytest

from liveq.cli.main import main
from liveq.core.config import shipped_configs

SMALL = str(shipped_configs()["livestream_small"])


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("liveq: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "dqn"
    assert main(["train", "--config", SMALL, "--out", str(out), "--steps", "300",
                 "--no-progress"]) == 0
    return out


def test_metrics_are_strict_json_even_before_the_first_loss(tiny_run):
    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))

    records = [strict(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert records and all(isinstance(r["env_steps"], int) for r in records)
    losses = [r.get("train/loss") for r in records if "train/loss" in r]
    assert all(v is None or math.isfinite(v) for v in losses)
    strict((tiny_run / "meta.json").read_text())


@pytest.mark.parametrize("flag", ["--json", "--csv"])
def test_eval_output_given_a_folder_is_refused_before_work(tiny_run, tmp_path, capsys, flag):
    assert main(["eval", str(tiny_run), "--episodes", "8", flag, str(tmp_path)]) == 2
    one_line_error(capsys, flag, "is a folder")


def test_compare_json_given_a_folder_is_refused_before_training(tmp_path, capsys):
    code = main(["compare", "--config", SMALL, "--agents", "dqn", "--out",
                 str(tmp_path / "runs"), "--json", str(tmp_path), "--no-progress"])
    assert code == 2 and not (tmp_path / "runs").exists()
    one_line_error(capsys, "--json", "is a folder")


def test_train_out_given_an_existing_file_is_refused(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me\n")
    assert main(["train", "--config", SMALL, "--out", str(target), "--steps", "10"]) == 2
    one_line_error(capsys, "--out", "existing file")
    assert target.read_text() == "keep me\n"


def test_config_given_by_shipped_name(tmp_path):
    assert main(["train", "--config", "livestream_small", "--out", str(tmp_path / "r"),
                 "--steps", "50", "--no-progress"]) == 0


def test_unexpected_failures_are_one_line_with_a_debug_hint(monkeypatch, capsys):
    import liveq.cli.commands as commands

    def boom(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(commands, "train_command", boom)
    assert main(["train", "--config", SMALL, "--out", "x"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("liveq: error: unexpected ZeroDivisionError") and "--debug" in err
    assert "\n" not in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "train", "--config", SMALL, "--out", "x"])


@pytest.mark.parametrize(("flag", "value"), [("--days", "inf"), ("--days", "nan"),
                                             ("--return-after-days", "inf"),
                                             ("--epsilon", "nan")])
def test_synth_refuses_non_finite_numbers(tmp_path, capsys, flag, value):
    assert main(["data", "synth", "--out", str(tmp_path / "log.csv"), flag, value]) == 2
    one_line_error(capsys, flag.lstrip("-").replace("-", "_"))


def test_a_network_too_wide_for_memory_is_refused_with_the_estimate(tmp_path, capsys):
    config = tmp_path / "wide.yaml"
    config.write_text("env: {id: liveq/LiveStream-v0}\n"
                      "agent: {name: dqn, dqn: {hidden_sizes: [200000, 200000]}}\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys, "hidden_sizes [200000, 200000]", "GiB")


@pytest.mark.parametrize(("kwargs", "needle"), [
    ("{n_streamers: 1000000000}", "n_streamers=1,000,000,000"),
    ("{n_streamer: 10}",
     "unknown config key 'env.kwargs.n_streamer' (did you mean 'n_streamers'?)"),
    ("{n_candidates: 0}", "env.kwargs.n_candidates must be at least 1"),
    ("{rewards: {click: .nan}}", "env.kwargs.rewards.click: expected a finite number"),
])
def test_bad_simulator_sizes_and_keys(tmp_path, capsys, kwargs, needle):
    config = tmp_path / "bad.yaml"
    config.write_text(f"env: {{id: liveq/LiveStream-v0, kwargs: {kwargs}}}\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys, needle)


@pytest.mark.parametrize("command", [["eval-offline", "log.csv"], ["data", "synth", "--out",
                                                                    "x.csv"], ["ope", "sim"]])
def test_negative_seeds_are_usage_errors(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--seed", "-1"])
    assert exit_.value.code == 2
    assert "--seed: expected a non-negative integer, got -1" in capsys.readouterr().err


def test_synth_takes_a_run_configs_simulator_settings(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "log.csv"), "--config",
                 "livestream_small", "--sessions", "20", "--days", "0.2"]) == 0
    chain = tmp_path / "chain.yaml"
    chain.write_text("env: {id: liveq/Chain-v0}\n")
    assert main(["data", "synth", "--out", str(tmp_path / "c.csv"), "--config",
                 str(chain)]) == 2
    one_line_error(capsys, "a run config for 'liveq/Chain-v0'")


def test_compare_refuses_a_learner_that_does_not_fit_before_training_any(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["compare", "--config", SMALL, "--agents", "dqn,tabular_q", "--out", str(out),
                 "--steps", "100", "--no-progress"]) == 2
    one_line_error(capsys, "--agents tabular_q: tabular Q-learning needs a Discrete")
    assert not out.exists()
    for behaviour, needle in (("nosuch:0.3", "--behaviour: unknown policy 'nosuch'"),
                              ("popular:x", "epsilon 'x' is not a number"),
                              ("popular:1.5", "epsilon must be in [0, 1]"),
                              ("budget_aware", "budget_aware does not fit")):
        assert main(["compare", "--config", SMALL, "--agents", "bc", "--out", str(out),
                     "--behaviour", behaviour]) == 2
        one_line_error(capsys, needle)
    assert not out.exists()


def test_compare_trains_offline_only_learners_from_the_behaviour_log(tmp_path, capsys):
    """bc and reinforce learn from a log of --behaviour (never acting) and play the same
    sessions as the behaviour, which joins the table; bc clones a deterministic behaviour."""
    out = tmp_path / "runs"
    assert main(["compare", "--config", SMALL, "--agents", "bc,reinforce,popular", "--out",
                 str(out), "--steps", "3000", "--episodes", "200", "--behaviour", "popular",
                 "--json", str(tmp_path / "r.json"), "--no-progress"]) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    assert set(results) == {"bc", "reinforce", "popular", "behaviour popular"}
    summary = json.loads((out / "reinforce" / "offline.json").read_text())
    assert summary["behaviour"] == "popular" and 3000 - 16 < summary["env_steps"] <= 3000
    assert summary["gradient_steps"] == (3000 - 500) // 16 * 2  # livestream_small's DQN
    assert (out / "bc" / "checkpoints" / "best.pt").exists()
    assert results["behaviour popular"]["return"] == results["popular"]["return"]
    assert results["bc"]["return"]["mean"] == pytest.approx(
        results["popular"]["return"]["mean"], rel=0.15)
