"""The Twitch live-streaming log (Rappaz, McAuley and Aberer, RecSys 2021).

Files `100k_a.csv` (3M rows) and `full_a.csv.gz` (124M rows): CSV without a header, one
row per time a user was seen watching a broadcast::

    user_id,stream_id,streamer_name,start,stop
    1,34347669376,grimnax,5415,5419

`start`/`stop` are 10-minute round indices (0..6148): the user watched during rounds
`start <= t < stop`. The recommended *item* is the streamer, not the broadcast.

Lines are read raw and checked with vectorised expressions (see `liveq.data.badrows`), so
a ragged or malformed line is reported with its physical line number. Big and gzipped
files stream chunk by chunk (`iter_twitch_chunks`); `load_twitch` keeps only the checked
rows, with streamer names coded as Int32 while reading.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from liveq.core.units import MINUTES_PER_DAY
from liveq.data import badrows as br
from liveq.data.log import InteractionLog, LogError, from_ranked, from_raw
from liveq.data.sanity import (
    TimeRange,
    duplicate_check,
    far_check,
    mark_copies,
    repeated_neighbours,
    time_range,
)

TWITCH_COLUMNS = ("user_id", "stream_id", "streamer_name", "start", "stop")
STEP_MINUTES = 10.0


class RawChunk(NamedTuple):
    """Checked rows of one chunk and the chunk's bad rows.

    frame: `line` (Int64), `user`, `stream` (Int64 original ids), `item` (String streamer
    name), `start`, `stop` (Int32 rounds); bad: `file`, `line`, `reason`.
    """

    frame: pl.DataFrame
    bad: pl.DataFrame


_KINDS = {"user_id": "int", "stream_id": "int", "streamer_name": "id", "start": "int",
          "stop": "int"}


def _checks() -> list[br.Check]:
    return [
        br.column_count_check(len(TWITCH_COLUMNS)),
        br.nul_check(),
        *br.field_checks(_KINDS),
        br.range_check("start", 0, br.INT32_MAX),
        br.range_check("stop", 0, br.INT32_MAX),
        br.order_check("start", "stop"),
    ]


def parse_twitch_lines(chunk: br.LineChunk, file: str) -> RawChunk:
    """Check one chunk of raw lines; good rows come back typed."""
    fields = br.split_fields(chunk, TWITCH_COLUMNS)
    fields = fields.with_columns(br.parse(name, kind) for name, kind in _KINDS.items()
                                 if kind != "id")
    good, bad = br.first_failure(fields, _checks(), file)
    frame = good.select(
        "line",
        pl.col("_v_user_id").alias("user"),
        pl.col("_v_stream_id").alias("stream"),
        pl.col("streamer_name").alias("item"),
        pl.col("_v_start").cast(pl.Int32).alias("start"),
        pl.col("_v_stop").cast(pl.Int32).alias("stop"),
    )
    return RawChunk(frame, bad)


def iter_twitch_chunks(path: str | Path, chunk_bytes: int = br.CHUNK_BYTES
                       ) -> Iterator[RawChunk]:
    """Checked chunks of a Twitch file (plain or gzipped), about `chunk_bytes` of text each.

    Streams through the file without loading it whole; bad rows are returned with each
    chunk, never raised, so the caller decides what to do with them.
    """
    for chunk in br.iter_lines(path, chunk_bytes):
        yield parse_twitch_lines(chunk, str(path))


class _NameCodes:
    """Streamer names seen so far, coded 0, 1, ... in order of first appearance."""

    def __init__(self) -> None:
        self.table = pl.DataFrame(schema={"item": pl.String, "code": pl.Int32})

    def encode(self, names: pl.Series) -> pl.Series:
        fresh = names.unique(maintain_order=True).to_frame("item").join(
            self.table, on="item", how="anti")
        start = self.table.height
        fresh = fresh.with_columns(
            pl.int_range(start, start + fresh.height, dtype=pl.Int32).alias("code"))
        self.table = pl.concat([self.table, fresh])
        return names.to_frame("item").join(self.table, on="item", how="left",
                                           maintain_order="left")["code"]

    def by_name(self) -> tuple[pl.Series, np.ndarray]:
        """Names in lexical order, and each code's position in that order."""
        order = self.table.sort("item")
        rank = np.empty(self.table.height, dtype=np.int32)
        rank[order["code"].to_numpy()] = np.arange(self.table.height, dtype=np.int32)
        return order["item"], rank


def load_twitch(path: str | Path, on_bad_rows: str = "error",
                chunk_bytes: int = br.CHUNK_BYTES) -> InteractionLog:
    """Read a Twitch log into an `InteractionLog` (items are streamers, 10-minute steps).

    Memory: the checked rows of the file (Int64 user ids, streamer names coded as Int32
    while reading) plus one chunk's working set, then about twice the final Int32 frame
    while re-indexing (sorting copies it once).
    """
    br.check_on_bad_rows(on_bad_rows)
    names, parts, bad = _NameCodes(), [], []
    for chunk in iter_twitch_chunks(path, chunk_bytes):
        bad.append(chunk.bad)
        if on_bad_rows == "error" and chunk.bad.height:
            continue  # only the bad rows matter now; count them all before raising
        frame = chunk.frame
        parts.append(frame.select("user", names.encode(frame["item"]).alias("item"),
                                  "start", "stop"))
    if not bad:
        raise LogError(f"{path}: the file is empty")
    kept = br.handle_bad_rows(pl.concat(bad), on_bad_rows, str(path))
    if sum(p.height for p in parts) == 0:
        raise LogError(f"{path}: no interactions (the file is empty or every row is bad)")
    frame = pl.concat(parts, rechunk=True)
    del parts
    users = frame["user"].unique().sort()
    user_rank = np.searchsorted(users.to_numpy(), frame["user"].to_numpy()).astype(np.int32)
    items, item_rank = names.by_name()
    frame = frame.with_columns(pl.Series("user", user_rank),
                               pl.Series("item", item_rank).gather(frame["item"]))
    del user_rank
    log = from_ranked(frame, users, items, step_minutes=STEP_MINUTES, source=str(path))
    log, screened = _screen(log, path, on_bad_rows, chunk_bytes)
    present = [b for b in (kept, screened) if b is not None]
    return replace(log, bad_rows=pl.concat(present) if present else None)


_KEY = ["start", "user", "item"]  # the order of a loaded log's rows


def _suspects(log: InteractionLog, bulk: TimeRange) -> pl.DataFrame:
    """Rows, in original ids, that lie far outside `bulk` or repeat another row's user,
    streamer, start and stop (a copy unless the broadcast differs); usually none."""
    frame = log.frame.select(*_KEY, "stop")
    far = frame.select(far_check(bulk).bad).to_series().to_numpy()
    near = np.flatnonzero(repeated_neighbours(frame, _KEY))
    twins = frame[near].filter(pl.struct(*_KEY, "stop").is_duplicated())
    found = pl.concat([frame.filter(pl.Series(far)), twins])
    return found.select(log.user_ids.gather(found["user"]).alias("user"),
                        log.item_ids.gather(found["item"]).alias("item"),
                        "start", "stop").unique()


def _screen(log: InteractionLog, path: str | Path, on_bad_rows: str, chunk_bytes: int
            ) -> tuple[InteractionLog, pl.DataFrame | None]:
    """Far rows and exact duplicates (`liveq.data.sanity`): found in the loaded log, named
    by line in a second pass over the file (only when there are any), then handled per
    `on_bad_rows`."""
    bulk = time_range(log.frame["start"], MINUTES_PER_DAY / STEP_MINUTES)
    suspects = _suspects(log, bulk)
    if suspects.height == 0:
        return log, None
    keys = ["user", "item", "start", "stop"]
    rows = mark_copies(pl.concat([chunk.frame.join(suspects, on=keys, how="semi")
                                  for chunk in iter_twitch_chunks(path, chunk_bytes)]),
                       ["user", "stream", *keys[1:]])
    checks = [far_check(bulk), duplicate_check()]
    _, bad = br.first_failure(rows, checks, str(path))
    if bad.height == 0:
        return log, None
    kept = br.handle_bad_rows(bad, on_bad_rows, str(path))
    drop = rows.join(bad.select("line"), on="line", how="semi").group_by(keys).len("drop")
    frame = log.frame.with_columns(log.user_ids.gather(log.frame["user"]).alias("user"),
                                   log.item_ids.gather(log.frame["item"]).alias("item"))
    frame = frame.join(drop, on=keys, how="left", maintain_order="left").filter(
        pl.int_range(pl.len()).over(keys) < pl.len().over(keys) - pl.col("drop").fill_null(0))
    return from_raw(frame.drop("drop"), step_minutes=STEP_MINUTES, source=log.source), kept


def write_twitch(rows: pl.DataFrame, path: str | Path) -> None:
    """Write `user_id, stream_id, streamer_name, start, stop` rows, no header (gzip: .gz)."""
    missing = [c for c in TWITCH_COLUMNS if c not in rows.columns]
    if missing:
        raise LogError(f"Twitch rows lack column(s) {', '.join(missing)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = rows.select(TWITCH_COLUMNS)
    if path.suffix == ".gz":
        with gzip.open(path, "wb", compresslevel=6) as out:
            ordered.write_csv(out, include_header=False)
    else:
        ordered.write_csv(path, include_header=False)
