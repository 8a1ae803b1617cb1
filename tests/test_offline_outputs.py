"""Where results go: one table layout, JSON without bare NaN, output paths checked first."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from liveq.cli.main import main
from liveq.cli.offline import write_result_json
from liveq.core.errors import UsageError
from liveq.core.report import (
    check_output_dir,
    check_output_file,
    format_table,
    save_json,
    text_table,
    to_json,
)


def strict_load(text: str):
    def refuse(name):
        raise AssertionError(f"bare {name} in JSON")
    return json.loads(text, parse_constant=refuse)


def test_text_table_aligns_and_rules_by_hand():
    table = text_table(["name", "n", "note"], [["a", "10", "x"], ["bbb", "2", "long"]],
                       left=(0, 2))
    assert table.splitlines() == ["name   n  note",
                                  "--------------",
                                  "a     10  x",
                                  "bbb    2  long"]
    assert text_table(["k", "v"], [["a", "1.5"]]).splitlines() == ["k    v", "------",
                                                                   "a  1.5"]


def test_results_table_keeps_its_layout():
    results = {"dqn": {"return": {"mean": 12.34, "ci_low": 12.0, "ci_high": 12.6}},
               "random": {"return": {"mean": 1.5, "ci_low": 1.5, "ci_high": 1.5}}}
    assert format_table(results).splitlines() == ["agent   return/session",
                                                  "-" * 22,
                                                  "dqn          12.3 ±0.3",
                                                  "random           1.500"]


def test_json_writes_non_finite_numbers_as_null(tmp_path):
    value = {"a": math.nan, "b": [np.float32(np.inf), -math.inf, np.int64(3)],
             "c": np.array([1.5, np.nan]), "d": (np.bool_(True), None), 4: "key"}
    assert strict_load(to_json(value)) == {"a": None, "b": [None, None, 3],
                                           "c": [1.5, None], "d": [True, None], "4": "key"}
    save_json(value, tmp_path / "v.json")
    assert (tmp_path / "v.json").read_text() == to_json(value)
    write_result_json({"splits": {"test": {"mean": math.nan}}}, tmp_path / "r.json")
    assert strict_load((tmp_path / "r.json").read_text()) == {"splits": {"test": {"mean": None}}}


def test_output_file_checks(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    with pytest.raises(UsageError, match=f"--json {tmp_path} is a folder"):
        check_output_file(tmp_path, "--json", force=True)
    with pytest.raises(UsageError, match="already exists; pass --force"):
        check_output_file(tmp_path / "old.json", "--out")
    check_output_file(tmp_path / "old.json", "--out", force=True)
    with pytest.raises(UsageError, match=f"folder {tmp_path / 'no'} does not exist"):
        check_output_file(tmp_path / "no" / "r.json", "--csv")
    check_output_file(tmp_path / "no" / "deeper" / "r.csv", "--out", make_parents=True)
    with pytest.raises(UsageError, match=f"{tmp_path / 'old.json'} is a file, not a folder"):
        check_output_file(tmp_path / "old.json" / "r.csv", "--out", make_parents=True)
    check_output_file(None, "--json")
    with pytest.raises(UsageError, match="is an existing file; give a folder"):
        check_output_dir(tmp_path / "old.json", "--out")
    check_output_dir(tmp_path / "new" / "plots", "--out")


@pytest.mark.parametrize("argv", [
    ["eval-offline", "missing.csv", "--json", "{tmp}"],
    ["eval-offline", "missing.csv", "--csv", "{tmp}"],
    ["ope", "sim", "--json", "{tmp}"],
    ["ope", "obd", "--csv", "{tmp}"],
    ["ope", "offline-rl", "--json", "{tmp}/no/r.json"],
    ["data", "analyze", "missing.csv", "--out", "{tmp}/file.txt"],
    ["data", "calibrate", "missing.csv", "--out", "{tmp}"],
    ["data", "calibrate", "missing.csv", "--out", "{tmp}/file.txt"],
    ["data", "calibrate", "missing.csv", "--out", "{tmp}/no/fit.yaml"],
])
def test_bad_output_paths_fail_before_any_work(tmp_path, capsys, argv):
    (tmp_path / "file.txt").write_text("keep me")
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    # the path is refused, not the missing log: nothing was read, simulated or trained
    assert err.startswith("liveq: error: --") and "missing.csv" not in err
    assert (tmp_path / "file.txt").read_text() == "keep me"


@pytest.mark.parametrize("replicates", ["0", "-5", "3"])
def test_too_few_bootstrap_replicates_are_refused(capsys, replicates):
    assert main(["ope", "sim", "--bootstrap", replicates]) == 2
    assert f"--bootstrap must be at least 10 replicates, got {replicates}" in \
        capsys.readouterr().err
