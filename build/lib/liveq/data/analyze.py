"""`liveq data analyze`: retention, churn risk, watch time and repeat consumption of a log.

Writes into `--out`:

* `summary.json`: every number below, NaN written as null;
* `retention.png`: share of each daily cohort of new viewers active k days later;
* `churn_roc.png`: ROC of the churn-risk model on the latest window (see `liveq.data.churn`
  for the windows, features and labels) beside days-since-last-visit alone;
* `watch_time.png`: minutes per spell (continuous watch of one streamer), from the log's
  `watch` column when it has one, else the time between joining and leaving;
* `session_length.png`: minutes per session (visit, see `liveq.data.stats`);
* `repeat_rate.png`: per day, the share of spells on a streamer the viewer watched before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from liveq.core.report import json_ready, save_json
from liveq.data import analysis_plots as plots
from liveq.data.analysis_metrics import (
    daily_repeat_rate,
    distribution,
    retention,
    whole_days,
)
from liveq.data.churn import ChurnResult, churn_model, churn_windows
from liveq.data.log import InteractionLog
from liveq.data.sanity import require_compact
from liveq.data.stats import sessions, spells, steps_per_day

FIGURES = ("retention.png", "churn_roc.png", "watch_time.png", "session_length.png",
           "repeat_rate.png")


def watch_minutes(log: InteractionLog, watches: pl.DataFrame
                  ) -> tuple[np.ndarray, str, float | None]:
    """Minutes watched per row (`watch` column, when it has any) or per spell (time in the
    stream): the values, where they come from, and their quantum (whole steps) if any."""
    values = log.frame["watch"].drop_nulls().to_numpy().astype(np.float64) \
        if "watch" in log.frame.columns else np.zeros(0)
    if (values > 0).any():
        return values, "per row, from the watch column", None
    return ((watches["stop"] - watches["start"]).to_numpy() * log.step_minutes,
            "per spell, time in the stream", log.step_minutes)


def _churn_summary(result: ChurnResult, churn_days: float) -> dict[str, Any]:
    return {"churn_days": churn_days, "window_days": churn_days, "auc": result.auc,
            "recency_auc": result.recency_auc, "train_rows": result.train_rows,
            "test_rows": result.test_rows, "train_churn_rate": result.train_churn_rate,
            "test_churn_rate": result.test_churn_rate,
            "train_window_ends_day": result.train_window_ends,
            "test_window_end_day": result.test_window_end, "weights": result.weights}


def analyze_log(log: InteractionLog, churn_days: float, seed: int = 0
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The summary (plain numbers) and what the plots need, for one log."""
    require_compact(log.frame, steps_per_day(log.step_minutes), log.source)
    churn_windows(log, churn_days)  # a too-short log fails before any work
    spd, first = steps_per_day(log.step_minutes), int(log.frame["start"].min())
    n_days = whole_days(log)
    watches, visits = spells(log), sessions(log)
    table = retention(watches, first, spd, n_days)
    repeat = daily_repeat_rate(watches, first, spd, n_days)
    watched, source, quantum = watch_minutes(log, watches)
    watch_dist = distribution(watched, quantum=quantum)
    session_dist = distribution((visits["stop"] - visits["start"]).to_numpy()
                                * log.step_minutes, quantum=log.step_minutes)
    churn = churn_model(log, churn_days, seed)
    summary = {
        "log": {"source": log.source, "rows": log.frame.height, "users": log.n_users,
                "streamers": log.n_items, "step_minutes": log.step_minutes,
                "whole_days": n_days},
        "retention": {"cohort_sizes": _cohort_sizes(watches, first, spd, n_days),
                      "first_day_cohort": table[0], "by_cohort": table},
        "churn": _churn_summary(churn, churn_days),
        "watch_minutes": {"source": source, **watch_dist._asdict()},
        "session_minutes": session_dist._asdict(),
        "repeat_ratio": float(watches["repeat"].mean()),
        "repeat_rate_per_day": repeat,
    }
    figures = {"table": table, "churn": churn, "watch": watch_dist, "session": session_dist,
               "repeat": repeat}
    return json_ready(summary), figures


def _cohort_sizes(watches: pl.DataFrame, first: int, spd: float, n_days: int) -> list[int]:
    day = ((watches.group_by("user").agg(pl.col("start").min())["start"].to_numpy() - first)
           / spd).astype(np.int64)
    return np.bincount(day[day < n_days], minlength=n_days).tolist()


def write_analysis(summary: dict[str, Any], figures: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_json(summary, out / "summary.json")
    plots.plot_retention(figures["table"], out / "retention.png")
    plots.plot_churn(figures["churn"], out / "churn_roc.png")
    watch_label = f"minutes watched ({summary['watch_minutes']['source']})"
    plots.plot_distribution(figures["watch"], watch_label, out / "watch_time.png")
    plots.plot_distribution(figures["session"], "session minutes", out / "session_length.png")
    plots.plot_repeat_rate(figures["repeat"], out / "repeat_rate.png")
