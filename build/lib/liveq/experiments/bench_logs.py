"""Log figures for `liveq bench`: loading a Twitch-format file and the LiveRec protocol.

The log has the Twitch 100k file's shape (about 100k viewers, 160k streamers, 6,148
ten-minute steps): heavy-tailed activity per viewer, Zipf popularity, five favourite
streamers per viewer, a quarter of views spread uniformly over all streamers (the long
tail), and each streamer live around its own hour of the day. The
baseline is polars reading the same file with no checks and no re-indexing, timed in the
same run, so the ratio is the price of liveq's line-by-line validation and dense ids.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

STEPS_PER_DAY = 144


def twitch_shaped_rows(n_rows: int, seed: int = 0, n_users: int = 100_000,
                       n_items: int = 160_000, n_steps: int = 6148) -> pl.DataFrame:
    """Raw Twitch columns `user_id, stream_id, streamer_name, start, stop`, at most
    `n_rows` of them: exact copies are dropped, as the loader refuses them."""
    rng = np.random.default_rng(seed)
    weight = rng.pareto(1.5, n_users) + 1
    per_user = np.maximum(1, np.round(weight / weight.sum() * n_rows)).astype(np.int64)
    user = np.repeat(np.arange(n_users), per_user)[:n_rows]
    n = len(user)
    popularity = np.minimum(rng.zipf(1.6, n_items).astype(float), 1e4)
    cumulative = np.cumsum(popularity) / popularity.sum()
    favourites = np.searchsorted(cumulative, rng.random((n_users, 5)))
    item = np.where(rng.random(n) < 0.5, favourites[user, rng.integers(0, 5, n)],
                    np.searchsorted(cumulative, rng.random(n)))
    item = np.where(rng.random(n) < 0.25, rng.integers(0, n_items, n), item)  # the long tail
    phase = rng.integers(0, STEPS_PER_DAY, n_items)
    day = rng.integers(0, n_steps // STEPS_PER_DAY, n)
    start = np.clip(day * STEPS_PER_DAY + phase[item] + rng.integers(0, 24, n), 0, n_steps - 2)
    stop = np.minimum(start + 1 + rng.geometric(0.35, n), n_steps)
    return pl.DataFrame({"user_id": user, "stream_id": item * 1000 + day,
                         "streamer_name": pl.Series(item).cast(pl.String),
                         "start": start, "stop": stop}).unique(maintain_order=True)


def _best_time(action, repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        began = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - began)
    return best, result


def bench_logs(n_rows: int, repeats: int = 2) -> dict[str, Any]:
    """Load time vs plain polars, then the LiveRec protocol's test split with POP and REP."""
    from liveq.data import load_log
    from liveq.ranking.models import PopularNow, RepeatFavourite
    from liveq.ranking.protocol import run_protocol

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "twitch_shaped.csv"
        twitch_shaped_rows(n_rows).write_csv(path, include_header=False)
        plain, _ = _best_time(lambda: pl.read_csv(path, has_header=False), repeats)
        ours, log = _best_time(lambda: load_log(path), repeats)
    began = time.perf_counter()
    run_protocol(log, {"pop": PopularNow(), "rep": RepeatFavourite()}, splits=("test",))
    protocol = time.perf_counter() - began
    return {"rows": log.frame.height, "users": log.n_users, "streamers": log.n_items,
            "steps": log.max_step, "load_s": ours, "load_rows_per_s": log.frame.height / ours,
            "polars_read_s": plain, "load_vs_polars": ours / plain,
            "protocol_pop_rep_test_s": protocol}


def log_lines(figures: dict[str, Any]) -> list[str]:
    """The summary lines of `bench_logs` figures."""
    return [f"  {'Twitch-format log, ' + format(figures['rows'], ',') + ' rows':<44}"
            f"{figures['load_rows_per_s']:>12,.0f} rows/s loaded and checked "
            f"({figures['load_vs_polars']:.1f}x polars' unchecked read)",
            f"  {'LiveRec protocol, POP + REP, test split':<44}"
            f"{figures['protocol_pop_rep_test_s']:>12.1f} s"]
