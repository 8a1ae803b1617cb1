"""The in-memory shape every interaction-log loader returns.

A log is one polars frame of interactions with dense integer ids (users 0..n_users-1,
items 0..n_items-1), where an *item* is a streamer (the thing a live-streaming
recommender ranks) and times are integer steps (10-minute rounds for Twitch). The
original ids are kept so results can be reported in the log's own terms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from liveq.core.errors import LogError

REQUIRED_COLUMNS = ("user", "item", "start", "stop")
OPTIONAL_COLUMNS = ("watch", "value")


@dataclass(frozen=True)
class InteractionLog:
    """Interactions re-indexed to dense ids.

    `frame` columns: `user`, `item` (Int32 dense ids), `start`, `stop` (Int32 steps, the
    viewer watched during `start <= t < stop`), optionally `watch` (Float32 minutes
    watched) and `value` (Float32 gifts or other value). Rows are sorted by
    (`start`, `user`). `user_ids[i]` / `item_ids[j]` are the original ids of dense
    user `i` / item `j`. `bad_rows` holds the rows a loader dropped when asked to report
    them (`on_bad_rows="report"`: columns `file`, `line`, `reason`), else None.
    """

    frame: pl.DataFrame
    user_ids: pl.Series
    item_ids: pl.Series
    step_minutes: float
    source: str
    bad_rows: pl.DataFrame | None = None

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def max_step(self) -> int:
        return int(self.frame["stop"].max())


def _check_step_minutes(step_minutes: float, source: str) -> None:
    if not (math.isfinite(step_minutes) and step_minutes > 0):
        raise LogError(f"{source}: step_minutes must be a positive number, got {step_minutes}")


def from_raw(frame: pl.DataFrame, *, step_minutes: float, source: str) -> InteractionLog:
    """Re-index a validated frame whose `user`/`item` columns hold original ids.

    Dense ids follow the order of first appearance in time (ties by original id), so the
    same file always gives the same ids.
    """
    _check_step_minutes(step_minutes, source)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise LogError(f"{source}: interaction frame lacks column(s) {', '.join(missing)}")
    frame = frame.sort(["start", "user", "item"])
    user_ids = frame["user"].unique(maintain_order=True)
    item_ids = frame["item"].unique(maintain_order=True)
    keep = [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    dense = frame.select(
        pl.col("user").replace_strict(user_ids, pl.int_range(len(user_ids), eager=True),
                                      return_dtype=pl.Int32),
        pl.col("item").replace_strict(item_ids, pl.int_range(len(item_ids), eager=True),
                                      return_dtype=pl.Int32),
        pl.col("start").cast(pl.Int32),
        pl.col("stop").cast(pl.Int32),
        *[pl.col(c).cast(pl.Float32) for c in keep],
    )
    return InteractionLog(dense, user_ids, item_ids, float(step_minutes), source)


def from_ranked(frame: pl.DataFrame, user_values: pl.Series, item_values: pl.Series, *,
                step_minutes: float, source: str) -> InteractionLog:
    """`from_raw` for big logs: `user`/`item` hold Int32 positions into the sorted original
    ids `user_values`/`item_values`, so re-indexing needs no hash maps and no second copy
    of the original ids. Gives exactly the ids and rows `from_raw` gives.
    """
    _check_step_minutes(step_minutes, source)
    frame = frame.sort(["start", "user", "item"])
    columns, originals = {}, {}
    for name, values in (("user", user_values), ("item", item_values)):
        order = frame[name].unique(maintain_order=True).to_numpy()
        dense = np.full(len(values), -1, dtype=np.int32)
        dense[order] = np.arange(len(order), dtype=np.int32)
        columns[name] = pl.Series(name, dense).gather(frame[name])
        originals[name] = values.gather(order).rename(name)
    keep = [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    frame = frame.select(
        columns["user"], columns["item"], pl.col("start").cast(pl.Int32),
        pl.col("stop").cast(pl.Int32), *[pl.col(c).cast(pl.Float32) for c in keep])
    return InteractionLog(frame, originals["user"], originals["item"], float(step_minutes),
                          source)
