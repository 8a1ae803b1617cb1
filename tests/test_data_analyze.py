"""Churn windows, AUC, logistic regression, retention and `liveq data analyze` end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from liveq.cli.main import main
from liveq.core.numerics import fit_logistic, sigmoid
from liveq.data.analysis_metrics import daily_repeat_rate, distribution, retention, whole_days
from liveq.data.analyze import FIGURES, analyze_log, write_analysis
from liveq.data.churn import (
    FEATURES,
    auc,
    churn_model,
    churn_windows,
    roc_curve,
    window_set,
)
from liveq.data.log import LogError, from_raw
from liveq.data.stats import sessions, spells

PNG = b"\x89PNG\r\n\x1a\n"


def test_auc_by_hand():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35 beats 0.1 only, 0.8 both
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    # a tie counts one half: (0.5 + 1 + 2) / 4
    assert auc(np.array([0.5, 0.5, 0.2, 0.9]), np.array([1, 0, 0, 1])) == 0.875
    assert math.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_auc_matches_counting_every_pair():
    rng = np.random.default_rng(0)
    scores, labels = rng.integers(0, 5, 60).astype(float), rng.random(60) < 0.4
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    assert auc(scores, labels) == pytest.approx(pairs.mean())


def test_roc_curve_steps_through_every_threshold():
    fpr, tpr = roc_curve(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]


def test_logistic_regression_solves_the_saturated_model():
    # x = 0: one churner in four (logit ln(1/3)); x = 1: three in four (logit ln 3)
    x = np.array([[0.0]] * 4 + [[1.0]] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=float)
    w, b = fit_logistic(x, y, l2=0.0)
    assert b == pytest.approx(math.log(1 / 3), abs=1e-8)
    assert w[0] == pytest.approx(2 * math.log(3), abs=1e-8)
    assert sigmoid(b + np.array([[1.0]]) @ w)[0] == pytest.approx(0.75)
    shrunk, _ = fit_logistic(x, y, l2=5.0)
    assert 0 < shrunk[0] < w[0]


def day_log():
    """12-hour steps (2 per day); each visit is one step at the start of a day.

    u0 watches x on days 0-4; u1 y on day 1 and x on day 4; u2 x on day 2; u3 y on days 0, 3.
    """
    visits = [("u0", "x", d) for d in range(5)] + [("u1", "y", 1), ("u1", "x", 4),
                                                    ("u2", "x", 2), ("u3", "y", 0),
                                                    ("u3", "y", 3)]
    frame = pl.DataFrame({"user": [v[0] for v in visits], "item": [v[1] for v in visits],
                          "start": [2 * v[2] for v in visits],
                          "stop": [2 * v[2] + 1 for v in visits]})
    return from_raw(frame, step_minutes=720, source="days")


def test_window_features_and_labels_by_hand():
    log = day_log()
    visits = sessions(log).with_columns(pl.col("start").shift(-1).over("user")
                                        .alias("next_start"))
    # window: steps [2, 6) = days 1 and 2; churned = no visit within 2 steps of the last one
    got = window_set(visits, spells(log), t1=6, width=4, horizon=2, spd=2.0)
    # rows: u0 (last visit step 4, next 6: stays), u1 (last 2, next 8: churned),
    # u2 (last 4, never again: churned); u3 did not visit in the window
    assert got.labels.tolist() == [0.0, 1.0, 1.0]
    col = {name: got.features[:, i].tolist() for i, name in enumerate(FEATURES)}
    assert col["log_visits"] == pytest.approx([math.log(3), math.log(2), math.log(2)])
    assert col["log_streamers"] == pytest.approx([math.log(2)] * 3)
    assert col["repeat_share"] == [1.0, 0.0, 0.0]  # u0 watched x on day 0 already
    assert col["days_since_last"] == [1.0, 2.0, 1.0]
    assert col["tenure_days"] == [3.0, 2.0, 1.0]
    assert col["active_day_share"] == [1.0, 0.5, 0.5]


def test_churn_windows_step_back_a_day_and_refuse_short_logs():
    first, width, train_ends, test_end = churn_windows(day_log(), 1.0)
    # visits end at step 9: the test window ends 2 steps (a day) earlier, training windows
    # end a day apart, early enough that their labels were known by step 7
    assert (first, width, train_ends, test_end) == (0, 2, [3, 5], 7)
    with pytest.raises(LogError, match="too short for churn windows of 2 days"):
        churn_windows(day_log(), 2.0)


def test_retention_and_repeat_rate_by_hand():
    log = day_log()
    watches = spells(log)
    assert whole_days(log) == 4  # steps 0..8 seen: day 4 is incomplete
    table = retention(watches, 0, 2.0, 4)
    nan = float("nan")
    expected = [[1.0, 0.5, 0.5, 1.0],  # cohort day 0: u0, u3
                [1.0, 0.0, 0.0, nan],  # day 1: u1
                [1.0, 0.0, nan, nan],  # day 2: u2
                [nan, nan, nan, nan]]  # day 3: nobody new
    np.testing.assert_array_equal(table, np.array(expected))
    rate = daily_repeat_rate(watches, 0, 2.0, 4)
    assert rate.tolist() == [0.0, 0.5, 0.5, 1.0]


def test_distribution_bins_whole_steps_without_gaps():
    dist = distribution(np.array([10.0, 10.0, 20.0, 40.0, 300.0]), quantum=10.0)
    edges = np.array(dist.edges)
    assert sum(dist.counts) == 5 and dist.counts[:2] == [2, 1]  # bins [5, 15), [15, 25)
    assert edges[0] == 5.0 and edges[-1] > 300.0
    assert np.allclose(np.mod(edges / 10.0, 1.0), 0.5)  # halfway between multiples
    assert (dist.median, dist.mean) == (20.0, 76.0)


def random_log(n_users: int = 300, days: int = 8, seed: int = 0):
    """Viewers whose engagement sets both how long they watch and whether they return."""
    rng, spd = np.random.default_rng(seed), 144
    rows = []
    for user in range(n_users):
        engaged, t = rng.random(), int(rng.integers(0, 2 * spd))
        favourites = rng.integers(0, 40, size=3)
        while t < days * spd:
            length = 1 + rng.poisson(2 + 8 * engaged)
            item = int(favourites[rng.integers(3)] if rng.random() < engaged
                       else rng.integers(40))
            rows.append((user, item, t, t + length))
            if rng.random() > 0.5 + 0.45 * engaged:
                break
            t += length + int(rng.exponential(spd * (1.5 - engaged))) + 4
    frame = pl.DataFrame(rows, schema=["user", "item", "start", "stop"], orient="row")
    return from_raw(frame.filter(pl.col("start") < days * spd), step_minutes=10,
                    source="random")


def test_analyze_writes_plots_and_a_summary_that_matches_direct_computation(tmp_path):
    log = random_log()
    summary, figures = analyze_log(log, churn_days=2.0)
    write_analysis(summary, figures, tmp_path)
    for name in FIGURES:
        assert (tmp_path / name).read_bytes().startswith(PNG), name
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == json.loads(json.dumps(summary))

    watches = spells(log)
    first = log.frame["start"].min()
    first_day = (watches.with_columns(((pl.col("start") - first) // 144).alias("day"))
                 .group_by("user").agg(pl.col("day").min().alias("d0"), pl.col("day")))
    cohort = first_day.filter(pl.col("d0") == 0)
    direct = [cohort["day"].list.contains(k).mean() for k in range(whole_days(log))]
    assert written["retention"]["first_day_cohort"] == pytest.approx(direct)
    assert written["retention"]["cohort_sizes"][0] == cohort.height
    assert written["repeat_ratio"] == pytest.approx(watches["repeat"].mean())
    assert written["watch_minutes"]["mean"] == pytest.approx(
        ((watches["stop"] - watches["start"]) * 10).mean())
    churn = churn_model(log, 2.0)
    assert written["churn"]["auc"] == pytest.approx(churn.auc)
    assert written["churn"]["test_rows"] == churn.test_rows
    assert churn.auc > 0.6  # engagement drives churn in this log, so it is learnable


def test_analyze_command_end_to_end(tmp_path, capsys):
    log_path, out = tmp_path / "synth.csv", tmp_path / "analysis"
    assert main(["data", "synth", "--out", str(log_path), "--sessions", "200", "--days", "4",
                 "--seed", "3"]) == 0
    assert main(["data", "analyze", str(log_path), "--out", str(out), "--churn-days",
                 "1"]) == 0
    assert "churn after 1 days away: AUC" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted([*FIGURES, "summary.json"])
    assert main(["data", "analyze", str(log_path), "--out", str(out), "--churn-days",
                 "7"]) == 2
    assert "too short for churn windows of 7 days" in capsys.readouterr().err
