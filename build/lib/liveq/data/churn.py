"""Churn risk: who stops coming back, predicted from how they watched.

A viewer *visits* when a session starts (`liveq.data.stats.sessions`). A viewer active in
an observation window `[t1 - W, t1)` whose last visit there is at step `l` has *churned*
when their next visit comes more than `churn_days` after `l`, or never. W equals
`churn_days`. The latest window ends `churn_days` before the log's last visit, so every
label is observed; the model trains on windows ending one day apart, each early enough
that its labels were known when the test window closed, and is scored on the latest one:
a strictly forward-in-time test. A log needs at least `3 * churn_days` days.

The model is a ridge-penalised logistic regression on standardised features
(scikit-learn's, through `liveq.core.numerics.fit_logistic`), scored by the area under
the ROC curve (`auc`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from liveq.core.numerics import fit_logistic, sigmoid
from liveq.data.log import InteractionLog, LogError
from liveq.data.stats import sessions, spells, steps_per_day

FEATURES = ("log_visits", "log_watch_steps", "log_streamers", "repeat_share",
            "days_since_last", "tenure_days", "active_day_share", "log_session_steps")
MAX_TRAIN_ROWS = 200_000


class ChurnSet(NamedTuple):
    """One or more observation windows stacked: a row per viewer and window."""

    features: np.ndarray  # (n, len(FEATURES)) float64
    labels: np.ndarray  # (n,) 1.0 = churned


class ChurnResult(NamedTuple):
    auc: float
    """AUC of the model on the test window."""
    recency_auc: float
    """AUC of days-since-last-visit alone on the test window (a baseline)."""
    train_rows: int
    test_rows: int
    train_churn_rate: float
    test_churn_rate: float
    train_window_ends: list[float]
    """Days (from the log's first step) at which each training window ends."""
    test_window_end: float
    weights: dict[str, float]
    """Coefficients on standardised features, plus the intercept under `bias`."""
    test_scores: np.ndarray  # (test_rows,) predicted churn probabilities
    test_labels: np.ndarray  # (test_rows,)
    test_recency: np.ndarray  # (test_rows,) days since the last visit, the baseline's score


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting one half.

    The Mann-Whitney statistic from mid-ranks. NaN when either class is absent.
    """
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mid = first + (counts + 1) / 2.0  # 1-based mid-rank of each tie group
    ranks[order] = np.repeat(mid, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    cut = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp, fp = np.cumsum(y)[cut], np.cumsum(~y)[cut]
    return (np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)])


def window_set(visits: pl.DataFrame, watches: pl.DataFrame, t1: int, width: int,
               horizon: int, spd: float) -> ChurnSet:
    """Features and labels of the viewers who visit during `[t1 - width, t1)`.

    visits: sessions with a `next_start` column; watches: spells; horizon: churn steps.
    """
    t0 = t1 - width
    inside = visits.filter((pl.col("start") >= t0) & (pl.col("start") < t1))
    spell_in = watches.filter((pl.col("start") >= t0) & (pl.col("start") < t1))
    first = visits.group_by("user").agg(pl.col("start").min().alias("first"))
    per_user = inside.group_by("user").agg(
        pl.len().alias("visits"),
        pl.col("start").max().alias("last"),
        pl.col("next_start").sort_by("start").last().alias("next"),
        (pl.col("stop").clip(upper_bound=t1) - pl.col("start")).mean().alias("session_steps"),
        ((pl.col("start") - t0) / spd).floor().n_unique().alias("days"))
    per_user = per_user.join(
        spell_in.group_by("user").agg(
            (pl.col("stop").clip(upper_bound=t1) - pl.col("start")).sum().alias("watch"),
            pl.col("item").n_unique().alias("streamers"),
            pl.col("repeat").mean().alias("repeat_share")),
        on="user", how="left").join(first, on="user", how="left").sort("user")
    columns = (
        np.log1p(per_user["visits"].to_numpy()),
        np.log1p(per_user["watch"].fill_null(0).to_numpy()),
        np.log1p(per_user["streamers"].fill_null(0).to_numpy()),
        per_user["repeat_share"].fill_null(0.0).to_numpy(),
        (t1 - per_user["last"].to_numpy()) / spd,
        (t1 - per_user["first"].to_numpy()) / spd,
        per_user["days"].to_numpy() / max(width / spd, 1.0),
        np.log1p(per_user["session_steps"].to_numpy()))
    nxt = per_user["next"].to_numpy().astype(np.float64)  # NaN: never came back
    churned = ~(nxt - per_user["last"].to_numpy() <= horizon)
    return ChurnSet(np.column_stack(columns).astype(np.float64), churned.astype(np.float64))


def _stack(sets: list[ChurnSet]) -> ChurnSet:
    return ChurnSet(np.concatenate([s.features for s in sets]),
                    np.concatenate([s.labels for s in sets]))


def churn_windows(log: InteractionLog, churn_days: float) -> tuple[int, int, list[int], int]:
    """(first step, window width and churn horizon in steps, train ends, test end).

    Raises LogError when the log is shorter than three churn periods.
    """
    if not churn_days > 0:
        raise LogError(f"--churn-days must be positive, got {churn_days}")
    spd = steps_per_day(log.step_minutes)
    width = max(1, round(churn_days * spd))
    first, end = int(log.frame["start"].min()), int(log.frame["start"].max()) + 1
    test_end = end - width
    if test_end - 2 * width < first:
        raise LogError(
            f"{log.source}: the log covers {(end - first) / spd:.2f} days of visits, too short "
            f"for churn windows of {churn_days:g} days (an observation window, a churn "
            f"period for training labels and one for test labels need "
            f"{3 * width / spd:.2f} days); pass a smaller --churn-days")
    day = max(1, round(spd))
    train_ends = list(range(test_end - width, first + width - 1, -day))[::-1]
    return first, width, train_ends, test_end


def churn_model(log: InteractionLog, churn_days: float, seed: int = 0) -> ChurnResult:
    """Train on earlier windows, score on the latest (see the module docstring)."""
    first, width, train_ends, test_end = churn_windows(log, churn_days)
    spd = steps_per_day(log.step_minutes)
    visits = sessions(log).with_columns(pl.col("start").shift(-1).over("user")
                                        .alias("next_start"))
    watches = spells(log)
    train = _stack([window_set(visits, watches, t1, width, width, spd) for t1 in train_ends])
    test = window_set(visits, watches, test_end, width, width, spd)
    if len(train.labels) > MAX_TRAIN_ROWS:
        keep = np.random.default_rng(seed).choice(len(train.labels), MAX_TRAIN_ROWS,
                                                  replace=False)
        train = ChurnSet(train.features[keep], train.labels[keep])
    if len(np.unique(train.labels)) < 2 or len(np.unique(test.labels)) < 2:
        raise LogError(f"{log.source}: churn labels are all the same in the training or test "
                       "window; churn risk cannot be modelled on this log")
    mean, std = train.features.mean(axis=0), train.features.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    w, bias = fit_logistic((train.features - mean) / std, train.labels, l2=1.0)
    scores = sigmoid(bias + (test.features - mean) / std @ w)
    recency = test.features[:, FEATURES.index("days_since_last")]
    return ChurnResult(
        auc=auc(scores, test.labels), recency_auc=auc(recency, test.labels),
        train_rows=len(train.labels), test_rows=len(test.labels),
        train_churn_rate=float(train.labels.mean()), test_churn_rate=float(test.labels.mean()),
        train_window_ends=[(t - first) / spd for t in train_ends],
        test_window_end=(test_end - first) / spd,
        weights={"bias": bias, **{f: float(v) for f, v in zip(FEATURES, w, strict=True)}},
        test_scores=scores, test_labels=test.labels, test_recency=recency)
