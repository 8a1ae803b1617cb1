"""The KuaiLive dataset (Qu et al. 2025, Kuaishou; https://imgkkk574.github.io/KuaiLive).

A folder of headed CSV files; liveq reads two of them and ignores the rest (room.csv,
streamer.csv, user.csv, comment.csv, like.csv, negative.csv, embeddings)::

    click.csv  user_id, live_id, streamer_id, timestamp, watch_live_time   (required)
    gift.csv   user_id, live_id, streamer_id, timestamp, gift_price        (optional)

Timestamps are Unix milliseconds and `watch_live_time` is milliseconds watched. Each click
becomes one interaction: item = `streamer_id` (the streamer, not the live room),
`start = floor(t / step)` and `stop = max(start + 1, ceil((t + watch_live_time) / step))`,
steps of `step_minutes` (default 10, as the Twitch log) counted from 00:00 UTC of the
first day, `watch` = watch_live_time in minutes, and `value` = the summed `gift_price` of
the gifts the user sent in that live room since that click (the latest click at or
before each gift). Gifts with no earlier click in the same room are counted in a warning.
Other columns may be present in any order; missing ones are named in the error.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import polars as pl

from liveq.core.errors import ConfigError
from liveq.data import badrows as br
from liveq.data.generic import GenericSchema, joined_bad_rows, read_table, screen_rows, to_log
from liveq.data.log import InteractionLog, LogError

CLICK_KINDS = {"user_id": "int", "live_id": "int", "streamer_id": "int", "timestamp": "int",
               "watch_live_time": "number"}
GIFT_KINDS = {"user_id": "int", "live_id": "int", "streamer_id": "int", "timestamp": "int",
              "gift_price": "number"}
SYNTH_EPOCH_MS = 1_746_403_200_000  # 2025-05-05 00:00 UTC: day 0 of synthetic folders


def _schema(step_minutes: float) -> GenericSchema:
    schema = GenericSchema(user="user_id", item="streamer_id", timestamp="timestamp",
                           duration="watch_live_time", watch="watch_live_time", value="value",
                           time_unit="ms", watch_unit="ms", step_minutes=step_minutes)
    try:
        schema.validate()
    except ConfigError as exc:
        raise LogError(f"KuaiLive: {exc}") from None
    return schema


def _gift_values(clicks: pl.DataFrame, gifts: pl.DataFrame, folder: Path) -> pl.Series:
    """Summed gift_price per click (0 without gifts), in the row order of `clicks`."""
    keyed = clicks.select("user_id", "live_id", "timestamp",
                          pl.int_range(clicks.height).alias("click")).sort("timestamp")
    matched = gifts.sort("timestamp").join_asof(
        keyed, on="timestamp", by=["user_id", "live_id"], strategy="backward",
        check_sortedness=False)
    lost = matched.filter(pl.col("click").is_null())
    if lost.height:
        print(f"liveq: warning: {folder / 'gift.csv'}: {lost.height} gift(s) (price "
              f"{lost['gift_price'].sum():g}) have no earlier click by that user in that "
              "live room; not counted", file=sys.stderr)
    totals = matched.drop_nulls("click").group_by("click").agg(pl.col("gift_price").sum())
    values = pl.int_range(clicks.height, eager=True).alias("click").to_frame().join(
        totals, on="click", how="left", maintain_order="left")["gift_price"]
    return values.fill_null(0.0).alias("value")


def load_kuailive(folder: str | Path, step_minutes: float = 10.0,
                  on_bad_rows: str = "error") -> InteractionLog:
    """Read a KuaiLive folder (click.csv, optional gift.csv) into an `InteractionLog`."""
    br.check_on_bad_rows(on_bad_rows)
    schema = _schema(step_minutes)
    folder = Path(folder)
    if not folder.is_dir():
        raise LogError(f"KuaiLive log must be a folder holding click.csv (and optionally "
                       f"gift.csv), got {folder}")
    if not (folder / "click.csv").is_file():
        raise LogError(f"{folder}: no click.csv (KuaiLive needs click.csv with columns "
                       f"{', '.join(CLICK_KINDS)})")
    non_negative = [br.min_check("timestamp", 0), br.min_check("watch_live_time", 0)]
    clicks, bad = read_table(folder / "click.csv", CLICK_KINDS, non_negative)
    bads = [bad]
    if (folder / "gift.csv").is_file():
        gifts, bad = read_table(folder / "gift.csv", GIFT_KINDS,
                                [br.min_check("timestamp", 0), br.min_check("gift_price", 0)])
        bads.append(bad)
    else:
        gifts = pl.DataFrame(schema={c: pl.Int64 for c in GIFT_KINDS})
    kept = br.handle_bad_rows(pl.concat(bads), on_bad_rows, str(folder))
    clicks, screened = screen_rows(clicks, schema, str(folder / "click.csv"), on_bad_rows,
                                   columns=list(CLICK_KINDS))
    clicks = clicks.with_columns(_gift_values(clicks, gifts, folder))
    log = to_log(clicks, schema, str(folder))
    return replace(log, bad_rows=joined_bad_rows(kept, screened))


def write_kuailive(raw: pl.DataFrame, folder: str | Path, step_minutes: float) -> None:
    """Write synthetic rows as a KuaiLive folder: click.csv, gift.csv and room.csv.

    Step 0 is `SYNTH_EPOCH_MS`; a row's click is at the start of its first step, its gifts
    (one row per interaction with gifts, their count as the price) at the same moment.
    room.csv spans each broadcast's first to last watched step (not its true live time).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    step_ms = int(round(step_minutes * 60_000))
    clicks = raw.select(
        pl.col("user").alias("user_id"), pl.col("stream").alias("live_id"),
        pl.col("item").alias("streamer_id"),
        (SYNTH_EPOCH_MS + pl.col("start").cast(pl.Int64) * step_ms).alias("timestamp"),
        (pl.col("watch").cast(pl.Float64) * 60_000).round().cast(pl.Int64)
        .alias("watch_live_time"),
        pl.col("value"))
    clicks.drop("value").write_csv(folder / "click.csv")
    clicks.filter(pl.col("value") > 0).select(
        "user_id", "live_id", "streamer_id", "timestamp",
        pl.col("value").round().cast(pl.Int64).alias("gift_price")).write_csv(
        folder / "gift.csv")
    raw.group_by("stream").agg(pl.col("item").first(), pl.col("start").min(),
                               pl.col("stop").max()).sort("stream").select(
        (pl.lit(SYNTH_EPOCH_MS) + pl.col("start").cast(pl.Int64) * step_ms)
        .map_batches(_p_date).alias("p_date"),
        pl.col("stream").alias("live_id"), pl.col("item").alias("streamer_id"),
        (SYNTH_EPOCH_MS + pl.col("start").cast(pl.Int64) * step_ms).alias("start_timestamp"),
        (SYNTH_EPOCH_MS + pl.col("stop").cast(pl.Int64) * step_ms).alias("end_timestamp"),
    ).write_csv(folder / "room.csv")


def _p_date(ms: pl.Series) -> pl.Series:
    """YYYYMMDD (UTC) of millisecond timestamps, as KuaiLive's room.csv writes dates."""
    return ms.cast(pl.Datetime("ms")).dt.strftime("%Y%m%d").cast(pl.Int64)
