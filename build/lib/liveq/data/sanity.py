"""Checks across a log's rows that no single line can fail: a row far outside the other
rows' time range, and exact duplicates.

*Far rows.* One row dated years away (a typo, a timestamp in the wrong unit) makes every
per-step or per-day table span the gap: gigabytes to terabytes for `analyze` and
`calibrate`, and an `eval-offline` split with no targets. `time_range` finds the log's
bulk: row starts are cut into clusters at gaps of more than a day; the cluster with the
most rows grows over its neighbours unless a neighbour is both far (its
gap exceeds the bulk's span and a day) and small (at most `MINORITY_ROWS` rows or
`MINORITY_SHARE` of the log). A row is far when its start lies outside the bulk or its
stop lies more than that allowance after the bulk's last start.

*Exact duplicates.* A viewer watching the same streamer again later is a repeat, a real
signal; the same row twice (same values in every column read) is a copy, and is reported
as a bad row: every copy after the first names the line it repeats.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from liveq.core.errors import LogError
from liveq.data.badrows import Check

MINORITY_ROWS = 10
MINORITY_SHARE = 0.01


class TimeRange(NamedTuple):
    """Where a log's rows lie, in steps."""

    first: int
    """First start of the bulk."""
    last: int
    """Last start of the bulk."""
    stop_limit: int
    """Latest stop not far: `last` plus the larger of the bulk's span and a day."""


def _clusters(values: np.ndarray, day: float) -> np.ndarray:
    """`(k + 1,)` bounds of runs of sorted distinct `values` with no gap above a day."""
    cut = np.flatnonzero(np.diff(values) > day) + 1
    return np.r_[0, cut, len(values)]


def time_range(start: pl.Series, steps_per_day: float) -> TimeRange:
    """The bulk of a log whose rows start at `start` (see the module docstring)."""
    counted = start.value_counts(name="rows").sort(start.name)
    values = counted[start.name].to_numpy().astype(np.int64)
    rows = counted["rows"].to_numpy().astype(np.int64)
    bounds = _clusters(values, steps_per_day)
    size = np.add.reduceat(rows, bounds[:-1])
    small = max(MINORITY_ROWS, MINORITY_SHARE * rows.sum())
    lo = hi = int(np.argmax(size))  # clusters lo..hi form the bulk
    while True:
        span = values[bounds[hi + 1] - 1] - values[bounds[lo]]
        allowance = max(span, steps_per_day)
        grown = False
        for side in (lo - 1, hi + 1):
            if not 0 <= side < len(size):
                continue
            gap = (values[bounds[lo]] - values[bounds[side + 1] - 1] if side < lo
                   else values[bounds[side]] - values[bounds[hi + 1] - 1])
            if gap <= allowance or size[side] > small:
                lo, hi, grown = min(lo, side), max(hi, side), True
                break
        if not grown:
            break
    first, last = int(values[bounds[lo]]), int(values[bounds[hi + 1] - 1])
    return TimeRange(first, last, last + int(np.ceil(max(last - first, steps_per_day))))


def far_check(bulk: TimeRange, start: str = "start", stop: str = "stop") -> Check:
    """Rows whose `start` or `stop` column (steps) lies far outside `bulk`."""
    outside = (pl.col(start) < bulk.first) | (pl.col(start) > bulk.last)
    where = f"the other rows start in steps {bulk.first}..{bulk.last}"
    return Check(outside | (pl.col(stop) > bulk.stop_limit),
                 pl.when(outside)
                 .then(pl.format(f"start (step {{}}) is far outside the log's time range: "
                                 f"{where}", pl.col(start)))
                 .otherwise(pl.format(f"stop (step {{}}) is far after the log's time range: "
                                      f"{where}", pl.col(stop))))


COPY_OF = "_copy_of"


def mark_copies(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """`frame` (with a `line` column) plus `COPY_OF`: the first line with the same values
    in every column of `keys`, null on that first line itself."""
    first = pl.col("line").min().over(keys)
    return frame.with_columns(pl.when(pl.col("line") != first).then(first).alias(COPY_OF))


def duplicate_check() -> Check:
    """Copies of an earlier line, on a frame from `mark_copies`."""
    return Check(pl.col(COPY_OF).is_not_null(),
                 pl.format("exact duplicate of line {}", pl.col(COPY_OF)))


def repeated_neighbours(frame: pl.DataFrame, keys: list[str]) -> np.ndarray:
    """`(n,)` bool: rows equal on `keys` to the row before them or after them.

    On a frame sorted by `keys` these are all the rows that may have an exact copy, found
    in one pass without hashing the whole frame.
    """
    same = np.ones(max(frame.height - 1, 0), dtype=bool)
    for key in keys:
        column = frame[key].to_numpy()
        same &= column[1:] == column[:-1]
    return np.r_[same, False] | np.r_[False, same]


def require_compact(frame: pl.DataFrame, steps_per_day: float, source: str) -> None:
    """Raise `LogError` when rows of `frame` (`start`, `stop` steps) lie far outside the
    others' time range: tables sized by the log's span would then span the gap.

    The loaders report such rows by line; this guards logs built in memory.
    """
    if frame.height == 0:
        return
    bulk = time_range(frame["start"], steps_per_day)
    far = frame.filter(far_check(bulk).bad)
    if far.height:
        raise LogError(f"{source}: {far.height} row(s) lie far outside the log's time range "
                       f"(the other rows start in steps {bulk.first}..{bulk.last}; e.g. a row "
                       f"from step {far['start'][0]} to {far['stop'][0]}); drop them first "
                       "(load_log with on_bad_rows='skip')")
