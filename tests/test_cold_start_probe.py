"""The click-model probe of the cold-start experiment: its data, its scores, its report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liveq.experiments import cold_start_probe as probe
from liveq.experiments.cold_start import WORLD
from liveq.features import CANDIDATE_SCHEMA


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEQ_CACHE_DIR", str(tmp_path / "cache"))


def test_auc_and_log_loss_known_values():
    y = np.array([0, 0, 1, 1])
    assert probe.auc(np.array([0.1, 0.4, 0.35, 0.8]), y) == pytest.approx(0.75)
    assert probe.auc(np.array([0.1, 0.2, 0.3, 0.4]), y) == 1.0
    assert probe.auc(np.array([0.4, 0.3, 0.2, 0.1]), y) == 0.0
    assert probe.auc(np.full(4, 0.5), y) == 0.5  # ties count half
    assert probe.log_loss(np.full(4, 0.5), y) == pytest.approx(math.log(2))
    assert probe.log_loss(np.array([0.1, 0.1, 0.9, 0.9]), y) == pytest.approx(-math.log(0.9))


def test_feature_sets_differ_only_in_what_describes_the_topic():
    known = probe.collect({**WORLD, "topic_evidence": 0.0}, seed=2, n_envs=8, steps=30)
    n_viewer_plus_row = known["stats only"].shape[1]
    assert known["+ content"].shape[1] == n_viewer_plus_row + 32
    # topics known to the platform: all three sets show the same topic match
    np.testing.assert_allclose(known["stats only"], known["oracle topic"], atol=1e-6)
    np.testing.assert_allclose(known["+ content"][:, :n_viewer_plus_row],
                               known["stats only"], atol=1e-6)
    learnt = probe.collect({**WORLD, "topic_evidence": 1e9}, seed=2, n_envs=8, steps=30)
    start = n_viewer_plus_row - len(CANDIDATE_SCHEMA)  # the candidate row's first column
    match = slice(start, start + 2)
    assert np.abs(learnt["stats only"][:, match]).max() < 1e-3  # no topic learnt yet
    assert np.abs(learnt["oracle topic"][:, match]).max() > 0.1
    assert learnt["new"].any() and learnt["click"].any() and not learnt["click"].all()
    assert set(np.unique(learnt["slot"])) <= set(range(8))


def test_run_probe_reports_every_feature_set_and_paired_differences():
    results = probe.run_probe({**WORLD, "topic_evidence": 30.0}, [0, 1], n_envs=8, steps=60)
    assert list(results) == [*probe.FEATURE_SETS, "+ content - stats only",
                             "oracle topic - stats only"]
    for name in probe.FEATURE_SETS:
        assert 0 < results[name]["log_loss"]["mean"] < 2
        assert 0 <= results[name]["auc"]["mean"] <= 1
    diff = results["oracle topic - stats only"]["auc"]["per_seed"]
    np.testing.assert_allclose(diff, np.subtract(results["oracle topic"]["auc"]["per_seed"],
                                                 results["stats only"]["auc"]["per_seed"]))
    assert probe.table(results).count("\n") == 6
