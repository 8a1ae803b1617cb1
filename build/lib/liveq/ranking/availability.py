"""Which streamers are live when, read off a log: the one availability index of the offline
protocol, its candidates, BPR's negatives and the logged-Q models' transitions.

A log does not say when a streamer broadcasts, only when someone watched: a streamer is
*live* at step `t` when some row has `start <= t < stop` (a row with `stop == start`
counts as its start step), LiveRec's rule. The index lists, for each indexed step, the
live streamers by ascending id and how many distinct users watch each; with `watchers`
it also keeps who, so a query can leave its own user out.

Two availability rules use it (`AVAILABILITY`): `log`, the rule above, and `others`,
where a streamer is live for a user only through *other* users' rows (see
`liveq.ranking.protocol`: on a sampled log the target's own row otherwise gives it away).
`live_candidates` reports the other users watching each candidate, so both rules are
read off one index.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

AVAILABILITY = ("log", "others")
_INT64_KEYS = 2**62


class LiveIndex(NamedTuple):
    """Who watches which streamer at each indexed step, entries sorted by (step, item)."""

    times: np.ndarray  # (T,) int64 indexed steps, ascending
    offsets: np.ndarray  # (T + 1,) int64: entries of times[j] are [offsets[j], offsets[j+1])
    items: np.ndarray  # (P,) int32
    viewers: np.ndarray  # (P,) int32 distinct users watching the item during the step
    keys: np.ndarray  # (P,) int64 time index * n_items + item, ascending (for look-ups)
    n_items: int
    watcher: np.ndarray | None = None  # (W,) int64 user of each distinct (entry, user)
    watched: np.ndarray | None = None  # (W,) int64 entry of that (entry, user) pair


def every_step(frame: pl.DataFrame) -> np.ndarray:
    """`(T,)` every step from the first start to the last step any row covers."""
    if frame.height == 0:
        return np.zeros(0, dtype=np.int64)
    first = int(frame["start"].min())
    end = int(frame.select(pl.max_horizontal("stop", pl.col("start") + 1).max()).item())
    return np.arange(first, end, dtype=np.int64)


def live_index(frame: pl.DataFrame, n_items: int, times: np.ndarray | None = None, *,
               watchers: bool = False) -> LiveIndex:
    """The index of `frame`'s rows (`user`, `item`, `start`, `stop`) at `times` (sorted
    distinct steps; None: `every_step`), keeping who watches with `watchers`."""
    times = every_step(frame) if times is None else np.asarray(times, dtype=np.int64)
    start = frame["start"].to_numpy().astype(np.int64)
    stop = np.maximum(frame["stop"].to_numpy().astype(np.int64), start + 1)
    user = frame["user"].to_numpy().astype(np.int64)
    n_users = int(user.max(initial=-1)) + 1
    if len(times) * n_items * max(n_users, 1) >= _INT64_KEYS:
        raise ValueError(f"live_index: {len(times)} steps x {n_items} streamers x {n_users} "
                         "users do not fit 64-bit keys")
    first, end = np.searchsorted(times, start), np.searchsorted(times, stop)
    covered = end - first
    row = np.repeat(np.arange(len(start)), covered)
    time_index = first[row] + np.arange(len(row)) - np.repeat(np.cumsum(covered) - covered,
                                                              covered)
    key = time_index * n_items + frame["item"].to_numpy().astype(np.int64)[row]
    key, user = np.divmod(np.unique(key * max(n_users, 1) + user[row]), max(n_users, 1))
    new_key = np.diff(key, prepend=-1) != 0
    keys = key[new_key]
    viewers = np.diff(np.r_[np.flatnonzero(new_key), len(key)]).astype(np.int32)
    offsets = np.searchsorted(keys // n_items, np.arange(len(times) + 1)).astype(np.int64)
    extra = (user, np.cumsum(new_key) - 1) if watchers else (None, None)
    return LiveIndex(times, offsets, (keys % n_items).astype(np.int32), viewers, keys,
                     n_items, *extra)


def slots(live: LiveIndex, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(n,)` index of each step in `live.times` and whether it is indexed at all."""
    time = np.asarray(time, dtype=np.int64)
    slot = np.searchsorted(live.times, time).clip(max=max(len(live.times) - 1, 0))
    found = live.times[slot] == time if len(live.times) else np.zeros(len(time), bool)
    return slot, found


def viewers_at(live: LiveIndex, item: np.ndarray, time: np.ndarray) -> np.ndarray:
    """`(n,)` users watching `item[i]` at step `time[i]` (0 where it is not live)."""
    slot, indexed = slots(live, time)
    keys = slot * live.n_items + np.asarray(item, dtype=np.int64)
    pos = np.searchsorted(live.keys, keys).clip(max=max(len(live.keys) - 1, 0))
    found = indexed & (live.keys[pos] == keys) if len(live.keys) else np.zeros(len(keys), bool)
    return np.where(found, live.viewers[pos], 0).astype(np.int32)


def live_candidates(frame: pl.DataFrame, n_items: int, user: np.ndarray,
                    time: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(offsets, cand_item, cand_viewers)` for queries of distinct users at `time`.

    Candidates of a query are the streamers live at its time, by ascending item id;
    `cand_viewers` counts the distinct *other* users watching each one then (0: live only
    through the query's own user, which the `others` rule drops).
    """
    if len(np.unique(user)) != len(user):
        raise ValueError("live_candidates needs one query per user")
    live = live_index(frame, n_items, np.unique(time), watchers=True)
    slot = np.searchsorted(live.times, time)
    begin = live.offsets[slot]
    sizes = live.offsets[slot + 1] - begin
    offsets = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    source = np.repeat(begin - offsets[:-1], sizes) + np.arange(offsets[-1])
    cand_item, cand_viewers = live.items[source], live.viewers[source]
    query_of_user = np.full(max(int(live.watcher.max(initial=-1)), int(user.max(initial=-1)))
                            + 1, -1, dtype=np.int64)
    query_of_user[user] = np.arange(len(user))
    query = query_of_user[live.watcher]
    own = np.flatnonzero(query >= 0)
    own = own[live.keys[live.watched[own]] // n_items == slot[query[own]]]
    position = offsets[query[own]] + live.watched[own] - begin[query[own]]
    cand_viewers[position] -= 1
    return offsets, cand_item, cand_viewers
