"""Retrieval: which live streams a viewer's candidate table holds, as a platform's feed does.

First the viewer's followed streamers who are live (newest follow first), then the most
watched live streams (trending), then a random window of the other live streams
(exploration). Duplicates are dropped and the table is filled to `n_candidates` when
enough streamers are live; -1 marks an empty slot. The simulator and the service both
retrieve with `retrieve`, so a served model sees tables built the way it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RowRunner = Callable[[Callable[[slice], None], int], None]


def all_rows(work: Callable[[slice], None], n: int) -> None:
    """Run the per-row work on every row at once (the `for_rows` of a single caller)."""
    work(slice(0, n))


def retrieve(live: np.ndarray, viewers: np.ndarray, follows: np.ndarray, *,
             n_candidates: int, followed_slots: int, trending_slots: int,
             rng: np.random.Generator, for_rows: RowRunner = all_rows) -> np.ndarray:
    """`(n, n_candidates)` int32 candidate ids, -1 for empty slots.

    live: `(n_streamers,)` bool; viewers: `(n_streamers,)` audience counts; follows:
    `(n, F)` followed ids, -1 empty; for_rows: runs the per-row work (a thread pool in the
    simulator, `all_rows` in a service). Draws one permutation and `n` offsets from `rng`.
    """
    n, k = len(follows), n_candidates
    live_ids = np.flatnonzero(live).astype(np.int32)  # int32 halves the compare costs
    n_trend = min(trending_slots, len(live_ids))
    order = np.argsort(-viewers[live_ids], kind="stable")
    trending, others = live_ids[order[:n_trend]], rng.permutation(live_ids[order[n_trend:]])
    width = k - n_trend
    offsets = rng.integers(0, max(len(others), 1), size=(n, 1))
    out = np.empty((n, k), dtype=np.int32)

    def fill(rows: slice) -> None:
        followed = live_follows(follows[rows], live, followed_slots)
        window = _window(others, offsets[rows], width)
        pool = np.concatenate([followed, np.broadcast_to(trending, (len(window), n_trend)),
                               window], axis=1)
        out[rows] = _first_distinct(pool, n_followed=followed.shape[1], k=k)

    for_rows(fill, n)
    return out


def live_follows(follows: np.ndarray, live: np.ndarray, slots: int) -> np.ndarray:
    """Up to `slots` followed streamers who are live, newest follow first; -1 pads."""
    newest_first = follows[:, ::-1]
    live_follow = np.where((newest_first >= 0) & live[np.maximum(newest_first, 0)],
                           newest_first, -1)
    order = np.argsort(live_follow < 0, axis=1, kind="stable")[:, :slots]
    return np.take_along_axis(live_follow, order, axis=1)


def _window(others: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """`width` consecutive streamers of the shuffled `others` from each row's offset."""
    window = np.full((len(offsets), width), -1, dtype=np.int32)
    if len(others):
        cols = np.arange(min(width, len(others)))
        window[:, : len(cols)] = others[(offsets + cols) % len(others)]
    return window


def _first_distinct(pool: np.ndarray, n_followed: int, k: int) -> np.ndarray:
    """Keep the first `k` valid ids per row; later copies of a followed id are dropped."""
    valid = pool >= 0
    for col in pool[:, :n_followed].T:
        if (col >= 0).any():
            valid[:, n_followed:] &= pool[:, n_followed:] != col[:, None]
    out = pool[:, :k].copy()
    ragged = np.flatnonzero(~valid[:, :k].all(axis=1))  # rows with holes or copies
    if len(ragged):
        sub, sub_valid = pool[ragged], valid[ragged]
        position = np.cumsum(sub_valid, axis=1) - 1
        keep = sub_valid & (position < k)
        rows = np.broadcast_to(np.arange(len(ragged))[:, None], sub.shape)
        packed = np.full((len(ragged), k), -1, dtype=pool.dtype)
        packed[rows[keep], position[keep]] = sub[keep]
        out[ragged] = packed
    return out
