"""Statistics of an interaction log, shared by `liveq data calibrate` and `analyze`.

A log row says a viewer watched a streamer during steps `start <= t < stop`. Three derived
tables carry every statistic here; each merges intervals that touch or nearly touch:

* a *spell* is one continuous watch of one streamer by one viewer: rows of the same
  (user, item) pair that overlap or are adjacent, merged;
* a *session* is one visit of a viewer: their rows merged across holes of at most
  `SESSION_GAP_MINUTES` (a step with nothing opened does not end a visit);
* a *broadcast* is one live stream of a streamer as the log sees it: the union of every
  viewer's rows on that streamer, merged across holes of at most `BROADCAST_GAP_MINUTES`.
  A log only shows streams someone in it watched, so broadcasts are lower bounds of the
  real ones (a stream's quiet start or end is invisible).

Times of day assume step 0 starts at midnight; a day is `MINUTES_PER_DAY / step_minutes`
steps.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from liveq.core.units import MINUTES_PER_DAY
from liveq.data.log import InteractionLog

SESSION_GAP_MINUTES = 30.0
BROADCAST_GAP_MINUTES = 120.0


def steps_per_day(step_minutes: float) -> float:
    return MINUTES_PER_DAY / step_minutes


def gap_steps(minutes: float, step_minutes: float) -> int:
    """Largest hole, in whole steps, that `minutes` of tolerance bridges."""
    return int(math.floor(minutes / step_minutes + 1e-9))


def first_of_key(frame: pl.DataFrame, keys: list[str]) -> np.ndarray:
    """`(n,)` bool: the row starts a new run of equal `keys` (frame sorted by `keys`)."""
    new_key = np.ones(frame.height, dtype=bool)
    if frame.height > 1:
        new_key[1:] = np.any([np.diff(frame[k].to_numpy().astype(np.int64)) != 0
                              for k in keys], axis=0)
    return new_key


def merge_intervals(frame: pl.DataFrame, keys: list[str], gap: int) -> pl.DataFrame:
    """Merge `[start, stop)` intervals of equal `keys` whose hole is at most `gap` steps.

    Returns `keys`, `start`, `stop`, `rows` (rows merged) and `steps` (sum of the rows'
    lengths, overlaps counted twice), sorted by `keys` and `start`.
    """
    ordered = frame.select(*keys, "start", "stop").sort([*keys, "start", "stop"])
    n = ordered.height
    if n == 0:
        return ordered.with_columns(pl.lit(0, pl.Int64).alias("rows"),
                                    pl.lit(0, pl.Int64).alias("steps"))
    start = ordered["start"].to_numpy().astype(np.int64)
    stop = ordered["stop"].to_numpy().astype(np.int64)
    new_key = first_of_key(ordered, keys)
    # A running maximum that restarts at every key: lift each key group above the last.
    group = np.cumsum(new_key) - 1
    lift = group * (int(stop.max(initial=0)) + 1)
    reach = np.maximum.accumulate(stop + lift) - lift  # (n,) furthest stop so far in group
    opens = new_key.copy()
    opens[1:] |= start[1:] > reach[:-1] + gap
    first = np.flatnonzero(opens)
    last = np.r_[first[1:] - 1, n - 1].astype(np.int64)
    lengths = np.r_[0, np.cumsum(stop - start)]
    return ordered[first].select(*keys).with_columns(
        pl.Series("start", start[first], dtype=pl.Int32),
        pl.Series("stop", reach[last], dtype=pl.Int32),
        pl.Series("rows", last - first + 1, dtype=pl.Int64),
        pl.Series("steps", lengths[last + 1] - lengths[first], dtype=pl.Int64))


def spells(log: InteractionLog) -> pl.DataFrame:
    """Continuous watches: columns user, item, start, stop, rows, steps, repeat.

    `repeat` is true when the viewer watched the same streamer in an earlier spell.
    """
    merged = merge_intervals(log.frame, ["user", "item"], gap=0)
    return merged.with_columns(
        pl.Series("repeat", ~first_of_key(merged, ["user", "item"])))


def sessions(log: InteractionLog) -> pl.DataFrame:
    """Visits: columns user, start, stop, rows, steps; sorted by user and start."""
    return merge_intervals(log.frame, ["user"],
                           gap_steps(SESSION_GAP_MINUTES, log.step_minutes))


def broadcasts(log: InteractionLog) -> pl.DataFrame:
    """Live streams as seen in the log: columns item, start, stop, rows, steps."""
    return merge_intervals(log.frame, ["item"],
                           gap_steps(BROADCAST_GAP_MINUTES, log.step_minutes))


def live_counts(intervals: pl.DataFrame, first: int, end: int) -> np.ndarray:
    """`(end - first,)` number of `[start, stop)` intervals covering each step of
    `[first, end)` (the log's own steps: an array over its span, not from step 0)."""
    diff = np.zeros(end - first + 1, dtype=np.int64)
    np.add.at(diff, intervals["start"].to_numpy().astype(np.int64) - first, 1)
    np.add.at(diff, np.minimum(intervals["stop"].to_numpy(), end).astype(np.int64) - first, -1)
    return np.cumsum(diff[:-1])


def hour_of_day(steps: np.ndarray, step_minutes: float) -> np.ndarray:
    """Hour of the day (0 <= h < 24, fractional) at the beginning of each step."""
    return np.mod(np.asarray(steps, dtype=np.float64) * step_minutes / 60.0, 24.0)


def circular_hours(hours: np.ndarray) -> tuple[float, float]:
    """Circular mean hour and concentration R in [0, 1] (0 = spread evenly, 1 = one hour)."""
    angle = 2.0 * np.pi * np.asarray(hours, dtype=np.float64) / 24.0
    c, s = np.cos(angle).mean(), np.sin(angle).mean()
    return float(np.mod(np.arctan2(s, c) * 24.0 / (2.0 * np.pi), 24.0)), float(np.hypot(c, s))


def top_share(counts: np.ndarray, fraction: float = 0.01) -> float:
    """Share of the total held by the top `ceil(fraction * len(counts))` entries."""
    counts = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    top = max(1, math.ceil(fraction * len(counts)))
    return float(counts[:top].sum() / max(counts.sum(), 1e-12))


def visit_gaps(visits: pl.DataFrame) -> np.ndarray:
    """Steps from the end of each session to the start of the same viewer's next one."""
    gaps = visits.sort(["user", "start"]).select(
        (pl.col("start").shift(-1).over("user") - pl.col("stop")).alias("gap"))["gap"]
    return gaps.drop_nulls().to_numpy()


def live_day_share(streams: pl.DataFrame, spd: float) -> float:
    """Estimated chance a streamer is live on a given day.

    Over the streamers whose first and last live days are at least two days apart, the
    share of the days strictly between them on which they went live; the first and last
    days are left out because they are live by construction. Days are calendar days
    (step 0 is midnight) of stream starts. NaN when no streamer qualifies.
    """
    days = (streams.select("item", (pl.col("start") / spd).floor().cast(pl.Int64).alias("day"))
            .unique().group_by("item")
            .agg(pl.len().alias("live"), (pl.col("day").max() - pl.col("day").min() + 1)
                 .alias("span")))
    inner = days.filter(pl.col("span") >= 3)
    if inner.is_empty():
        return float("nan")
    return float(((inner["live"] - 2).sum()) / ((inner["span"] - 2).sum()))


def new_streamer_share(streams: pl.DataFrame, first: int, spd: float) -> float:
    """Mean over days 1, 2, ... of the share of that day's live streamers not seen before.

    Days count from step `first` (the log's first step) by stream start. NaN for a log of
    one day. Streamers who skipped the earlier days, or whom nobody watched then, also
    count as new, so even a log without newcomers gives a positive share.
    """
    days = (streams.select("item", ((pl.col("start") - first) / spd).floor().cast(pl.Int64)
                           .alias("day")).unique())
    debut = days.group_by("item").agg(pl.col("day").min().alias("debut"))
    per_day = (days.join(debut, on="item").filter(pl.col("day") >= 1).group_by("day")
               .agg((pl.col("day") == pl.col("debut")).mean().alias("new")))
    return float(per_day["new"].mean()) if per_day.height else float("nan")


def well_watched(streams: pl.DataFrame, share: float = 0.25) -> np.ndarray:
    """`(n_streams,)` bool: the `share` of broadcasts with the most rows (ties included).

    Their observed spans are close to the true ones: someone watched from start to end.
    """
    rows = streams["rows"].to_numpy()
    if len(rows) == 0:
        return np.zeros(0, dtype=bool)
    return rows >= np.quantile(rows, 1.0 - share)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if len(x) else float("nan")


def log_statistics(log: InteractionLog) -> dict[str, float]:
    """The statistics `liveq data calibrate` matches and prints (see `STAT_LABELS`)."""
    spd, minutes = steps_per_day(log.step_minutes), log.step_minutes
    n_steps = log.max_step
    streams, visits, watches = broadcasts(log), sessions(log), spells(log)
    stream_min = (streams["stop"] - streams["start"]).to_numpy() * minutes
    session_min = (visits["stop"] - visits["start"]).to_numpy() * minutes
    first = int(log.frame["start"].min())
    live = live_counts(streams, first, n_steps)
    viewers = live_counts(visits, first, n_steps)
    peak_mean, peak_r = circular_hours(hour_of_day(streams["start"].to_numpy(), minutes))
    hours = np.floor(hour_of_day(streams["start"].to_numpy(), minutes)).astype(np.int64)
    gaps = visit_gaps(visits) * minutes / 60.0
    per_item = watches.group_by("item").len()["len"].to_numpy()
    return {
        "users": float(log.n_users),
        "streamers": float(log.n_items),
        "days": (n_steps - first) / spd,
        "viewers_per_step": _mean(viewers),
        "streams_live_per_step": _mean(live),
        "streams_per_day": len(streams) * spd / max(n_steps - first, 1),
        "stream_hours_mean": _mean(stream_min) / 60.0,
        "stream_hours_median": _median(stream_min) / 60.0,
        "stream_hours_top_quarter": _mean(stream_min[well_watched(streams)]) / 60.0,
        "live_day_share": live_day_share(streams, spd),
        "new_streamer_share": new_streamer_share(streams, first, spd),
        "start_hour_peak": float(np.bincount(hours, minlength=24).argmax()),
        "start_hour_mean": peak_mean,
        "start_hour_concentration": peak_r,
        "sessions_per_user": len(visits) / max(log.n_users, 1),
        "session_minutes_mean": _mean(session_min),
        "session_minutes_median": _median(session_min),
        "repeat_ratio": float(watches["repeat"].mean()),
        "gap_hours_mean": _mean(gaps),
        "gap_hours_median": _median(gaps),
        "top1pct_share": top_share(per_item, 0.01),
        "top10pct_share": top_share(per_item, 0.1),
    }


STAT_LABELS = {
    "users": "viewers",
    "streamers": "streamers",
    "days": "days covered",
    "viewers_per_step": "viewers watching per step",
    "streams_live_per_step": "streams live per step",
    "streams_per_day": "streams per day",
    "stream_hours_mean": "stream duration, mean (h)",
    "stream_hours_median": "stream duration, median (h)",
    "stream_hours_top_quarter": "stream duration, most-watched 1/4 (h)",
    "live_day_share": "streamer live-day share",
    "new_streamer_share": "new streamers among a day's",
    "start_hour_peak": "stream start hour, mode",
    "start_hour_mean": "stream start hour, circular mean",
    "start_hour_concentration": "stream start hour, concentration R",
    "sessions_per_user": "sessions per viewer",
    "session_minutes_mean": "session length, mean (min)",
    "session_minutes_median": "session length, median (min)",
    "repeat_ratio": "repeat ratio (spells)",
    "gap_hours_mean": "inter-visit gap, mean (h)",
    "gap_hours_median": "inter-visit gap, median (h)",
    "top1pct_share": "spells on top-1% streamers",
    "top10pct_share": "spells on top-10% streamers",
}
