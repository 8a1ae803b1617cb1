"""Gift and comment rates of a KuaiLive folder, to fit `liveq/LiveRoom-v0` to it.

`load_kuailive` keeps gift value per click but not counts, and ignores comment.csv, so
the rates are read here with the same checked CSV reader: minutes watched from
click.csv's `watch_live_time`, gifts as rows of gift.csv, comments as rows of
comment.csv (columns user_id, live_id, streamer_id, timestamp).
"""

from __future__ import annotations

from pathlib import Path

from liveq.data import badrows as br
from liveq.data.generic import read_table
from liveq.data.kuailive import CLICK_KINDS, GIFT_KINDS
from liveq.data.log import LogError
from liveq.sim.room_config import RoomConfig
from liveq.sim.room_core import fit_rates

COMMENT_KINDS = {"user_id": "int", "live_id": "int", "streamer_id": "int", "timestamp": "int"}


def kuailive_room_rates(folder: str | Path) -> tuple[float, float]:
    """(gifts, comments) per viewer-minute of a KuaiLive folder; a missing gift.csv or
    comment.csv counts as none. Rows failing the loader's checks raise `LogError`."""
    folder = Path(folder)
    clicks, bad = read_table(folder / "click.csv", CLICK_KINDS,
                             [br.min_check("watch_live_time", 0)])
    bads = [bad]
    counts = []
    for name, kinds in (("gift.csv", GIFT_KINDS), ("comment.csv", COMMENT_KINDS)):
        if (folder / name).is_file():
            rows, bad = read_table(folder / name, kinds, [br.min_check("timestamp", 0)])
            counts.append(rows.height)
            bads.append(bad)
        else:
            counts.append(0)
    for bad in bads:
        br.handle_bad_rows(bad, "error", str(folder))
    minutes = float(clicks["watch_live_time"].sum()) / 60_000.0
    if minutes <= 0:
        raise LogError(f"{folder}: click.csv records no watch time, so no rate per minute")
    return counts[0] / minutes, counts[1] / minutes


def fit_room_to_kuailive(folder: str | Path, config: RoomConfig | None = None,
                         **kwargs) -> RoomConfig:
    """`config` (default `RoomConfig()`) with gift and comment rates fitted to the log in
    `folder`; `kwargs` go to `liveq.sim.room_core.fit_rates`."""
    gifts, comments = kuailive_room_rates(folder)
    return fit_rates(config or RoomConfig(), gifts, comments, **kwargs)
