"""`liveq bench --quick` runs end to end and writes every figure; no timing assertions."""

from __future__ import annotations

import json

import pytest

from liveq.cli.main import main
from liveq.experiments.bench import compare_returns


def test_quick_bench_writes_positive_figures(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    sim, training = figures["simulator"], figures["training"]
    assert sim["single_env_steps_per_s"] > 0
    assert [v["batch"] for v in sim["vector"]] == [1, 100, 2000]
    assert all(v["viewer_steps_per_s"] > 0 for v in sim["vector"])
    assert sim["target"]["met"] is None  # batch 100,000 is not measured by --quick
    for learner in ("liveq", "sb3"):
        f = training[learner]
        assert f["env_steps"] >= training["env_steps_budget"]
        for key in ("env_steps_per_s", "updates_per_s", "updates", "train_seconds"):
            assert f[key] > 0, (learner, key)
        r = f["return"]
        assert r["ci_low"] <= r["mean"] <= r["ci_high"]
    assert training["speedup"] > 0
    assert training["return_verdict"] in ("better", "equal within CI", "worse")
    logs = figures["logs"]
    assert 99_000 <= logs["rows"] <= 100_000 and logs["steps"] > 500  # exact copies dropped
    for key in ("load_rows_per_s", "load_vs_polars", "protocol_pop_rep_test_s"):
        assert logs[key] > 0, key
    out = capsys.readouterr().out
    assert "liveq / SB3 env-steps/s" in out and "rows/s loaded and checked" in out


@pytest.mark.parametrize(("ours", "theirs", "verdict"), [
    ((10.0, 9.0, 11.0), (5.0, 4.0, 6.0), "better"),
    ((5.0, 4.0, 6.0), (10.0, 9.0, 11.0), "worse"),
    # difference 1.5, half-width hypot(1, 1) = 1.414: the interval (0.09, 2.91) excludes 0
    ((6.5, 5.5, 7.5), (5.0, 4.0, 6.0), "better"),
    # difference 1.4 < 1.414: the interval includes 0
    ((6.4, 5.4, 7.4), (5.0, 4.0, 6.0), "equal within CI"),
])
def test_compare_returns_uses_the_interval_of_the_difference(ours, theirs, verdict):
    as_entry = lambda t: dict(zip(("mean", "ci_low", "ci_high"), t, strict=True))  # noqa: E731
    assert compare_returns(as_entry(ours), as_entry(theirs)) == verdict
