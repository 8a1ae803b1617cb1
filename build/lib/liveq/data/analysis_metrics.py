"""Viewer-behaviour measures for `liveq data analyze`: retention, repeat rate, distributions.

Days count from the log's first step: day `d` holds steps
`first + d * spd <= t < first + (d + 1) * spd` with `spd = MINUTES_PER_DAY / step_minutes`;
only whole days are used, so a partial last day does not read as a drop in activity. A viewer is
active on a day when one of their spells (continuous watches, `liveq.data.stats.spells`)
starts on it. Cohorts are left-censored: viewers who first appear on day 0 include
everyone who was already a regular before the log began.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import polars as pl

from liveq.data.log import InteractionLog, LogError
from liveq.data.stats import steps_per_day


class Distribution(NamedTuple):
    """Summary and log-spaced histogram of a positive quantity."""

    mean: float
    median: float
    p90: float
    p99: float
    edges: list[float]
    counts: list[int]


def with_days(frame: pl.DataFrame, first: int, spd: float) -> pl.DataFrame:
    """`frame` with an Int64 `day` column counted from step `first`."""
    return frame.with_columns(((pl.col("start") - first) / spd).floor().cast(pl.Int64)
                              .alias("day"))


def whole_days(log: InteractionLog) -> int:
    """Number of whole days between the first step and the last step with a start."""
    spd = steps_per_day(log.step_minutes)
    first, end = int(log.frame["start"].min()), int(log.frame["start"].max()) + 1
    return int(math.floor((end - first) / spd + 1e-9))


def retention(watches: pl.DataFrame, first: int, spd: float, n_days: int) -> np.ndarray:
    """`(n_days, n_days)` matrix: row c, column k = share of day-c's new viewers active on
    day c + k (NaN past the last day or for an empty cohort)."""
    active = with_days(watches, first, spd).filter(pl.col("day") < n_days).select(
        "user", "day").unique()
    cohort = active.group_by("user").agg(pl.col("day").min().alias("cohort"))
    lagged = active.join(cohort, on="user").with_columns(
        (pl.col("day") - pl.col("cohort")).alias("lag"))
    counts = lagged.group_by("cohort", "lag").len()
    table = np.zeros((n_days, n_days))
    table[counts["cohort"].to_numpy(), counts["lag"].to_numpy()] = counts["len"].to_numpy()
    sizes = table[:, :1]
    out = np.divide(table, sizes, out=np.full_like(table, np.nan), where=sizes > 0)
    lag = np.arange(n_days)
    out[lag[:, None] + lag[None, :] >= n_days] = np.nan
    return out


def daily_repeat_rate(watches: pl.DataFrame, first: int, spd: float,
                      n_days: int) -> np.ndarray:
    """`(n_days,)` share of each day's spells on a streamer the viewer watched before."""
    per_day = (with_days(watches, first, spd).filter(pl.col("day") < n_days)
               .group_by("day").agg(pl.col("repeat").mean()))
    rate = np.full(n_days, np.nan)
    rate[per_day["day"].to_numpy()] = per_day["repeat"].to_numpy()
    return rate


def log_bins(low: float, high: float, bins: int, quantum: float | None) -> np.ndarray:
    """About `bins` log-spaced edges covering [low, high].

    With a `quantum` (values are multiples of it, such as whole steps) the edges fall
    halfway between multiples, so no bin is empty merely because it holds no multiple.
    """
    if quantum:
        k_low, k_high = round(low / quantum), round(high / quantum)
        ks = np.unique(np.round(np.geomspace(k_low, k_high + 1, bins + 1)))
        return (ks - 0.5) * quantum
    if high > low:
        return np.geomspace(low, high * (1 + 1e-9), bins + 1)
    return np.array([low, low * (1 + 1e-9)])


def distribution(values: np.ndarray, bins: int = 30, quantum: float | None = None
                 ) -> Distribution:
    """Summary statistics and a histogram on log-spaced bins of the positive `values`.

    Zero-length watches are left out (a log scale has no place for them).
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[values > 0]
    if len(values) == 0:
        raise LogError("nothing to summarise: every value is zero")
    edges = log_bins(values.min(), values.max(), bins, quantum)
    counts, _ = np.histogram(values, bins=edges)
    p90, p99 = np.quantile(values, [0.9, 0.99])
    return Distribution(float(values.mean()), float(np.median(values)), float(p90),
                        float(p99), [float(e) for e in edges], [int(c) for c in counts])
