"""The REINFORCE ablation runs end to end on a tiny budget and refuses bad settings."""

from __future__ import annotations

import json
import math

import pytest

from liveq.core.config import ConfigError
from liveq.experiments.reinforce_ablation import ReinforceAblationConfig, main


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
])
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        ReinforceAblationConfig(**changes).validate()
