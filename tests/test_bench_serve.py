"""`liveq bench serve --quick`: the real service under load; figures are positive and the
JSON is well-formed (no timing assertions: the machine decides the numbers)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from serving_support import env


def test_bench_serve_quick_reports_positive_figures(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "liveq.cli.main", "bench", "serve",
                           "--quick", "--json", str(out)],
                          env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert figures["live"] == 1000 and figures["quick"] is True
    assert figures["errors"] == 0
    fixed, peak, events = figures["fixed_rate"], figures["max_rate"], figures["feedback"]
    assert fixed["rate"] == 200 and fixed["ok"] == fixed["requests"] > 0
    for value in (fixed["p50_ms"], fixed["p99_ms"], peak["per_s"], events["per_s"]):
        assert math.isfinite(value) and value > 0
    assert fixed["p50_ms"] <= fixed["p99_ms"] <= fixed["max_ms"]
    assert events["ok"] > 0 and peak["ok"] > 0
    batched = figures["feedback_batch"]
    assert batched["ok"] > 0 and batched["events_per_s"] == batched["per_s"] * batched["batch"]
    for label in ("recommend p99 at 200 req/s", "max sustained recommends/s",
                  "durable feedback events/s (1 per request)",
                  "durable feedback events/s (50 per request)"):
        assert label in done.stdout


def test_bench_without_a_mode_still_parses():
    """`liveq bench` and `liveq bench --quick` keep their meaning beside `bench serve`."""
    from liveq.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["bench"]).mode is None
    assert parser.parse_args(["bench", "--quick"]).quick
    args = parser.parse_args(["bench", "serve", "--quick"])
    assert args.mode == "serve" and args.quick
