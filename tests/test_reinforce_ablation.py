"""The REINFORCE ablation runs end to end on a tiny budget and refuses bad settings."""

from __future__ import annotations

import json
import math

import pytest

from liveq.core.config import ConfigError
from liveq.experiments.reinforce_ablation import ReinforceAblationConfig, contrasts, main


def test_tiny_ablation_reports_every_variant_and_reference(tmp_path, capsys):
    out = tmp_path / "ablation.json"
    main(["--seeds", "0", "--sessions", "4", "--steps", "6", "--gradient-steps", "2",
          "--episodes", "4", "--json", str(out)])
    results = json.loads(out.read_text())
    expected = set(ReinforceAblationConfig().variants()) | {
        "reference: popular:0.3", "reference: popular",
        "reference: popular:0.3, slate 3", "reference: popular, slate 3"}
    assert set(results) == expected
    assert all(len(r["returns"]) == 1 and math.isfinite(r["mean"]) and r["mean"] >= 0
               for r in results.values())
    table = capsys.readouterr().out
    assert "| (b) slate 3, K = 3 |" in table and "| (c) no cap |" in table


@pytest.mark.parametrize(("changes", "message"), [
    ({"slate": 0}, "slate must be at least 1"),
    ({"episodes": 2, "sessions": 4}, r"episodes \(2\) must be at least sessions \(4\)"),
    ({"env": {"slate_size": 2}}, "env.slate_size must be 1"),
    ({"behaviour": "loud:0.1"}, "unknown policy 'loud'"),
    ({"parts": "ad"}, "parts must be letters of 'abc', got 'ad'"),
    ({"position_decay": 0.0}, r"position_decay must be in \(0, 1\]"),
])
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        ReinforceAblationConfig(**changes).validate()


def test_contrasts_are_paired_differences_over_seeds():
    rows = {"(a) no correction": [1.0, 5.0, 9.0], "(a) importance, logged beta": [2.0, 6.0, 10.0],
            "(b) slate 3, K = 1": [3.0, 3.0, 3.0], "(b) slate 3, K = 3": [2.0, 4.0, 3.0],
            "(c) cap 10": [1.0, 1.0, 1.0], "(c) cap 1": [1.5, 1.5, 1.5]}
    results = {k: {"returns": v} for k, v in rows.items()}
    got = contrasts(results)
    assert got["(a) importance, logged beta - (a) no correction"] == (1.0, 1.0, 1.0)
    assert got["(c) cap 1 - (c) cap 10"] == (0.5, 0.5, 0.5)
    mean, low, high = got["(b) slate 3, K = 3 - (b) slate 3, K = 1"]
    assert mean == 0.0 and low < -1.0 and high > 1.0
    assert len(got) == 3
