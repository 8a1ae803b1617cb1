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
