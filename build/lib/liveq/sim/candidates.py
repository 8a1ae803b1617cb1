"""The candidate table: which live streams the agent may rank, and how each is described.

Retrieval mirrors a real feed: first the viewer's followed streamers who are live, then
the most-watched live streams (trending), then a random sample of the other live streams
(exploration). Duplicates are dropped and the table is filled to `n_candidates` when
enough streamers are live; empty slots are masked.

`candidate_features` is the single place that turns streamer rows, the viewer's feature
vector and per-pair facts into the network's input, so the replay codec can rebuild
exactly what the agent saw from streamer ids and the clock.
"""

from __future__ import annotations

import numpy as np

from liveq.sim.config import LiveStreamConfig
from liveq.sim.parallel import for_row_chunks

PAIR_FEATURES = ("followed", "current", "history_minutes")
CANDIDATE_FEATURES = ("match", "recent_overlap", *PAIR_FEATURES, "log_viewers", "est_ctr",
                      "est_watch", "confidence", "hours_live", "is_new")


def retrieve(cfg: LiveStreamConfig, live: np.ndarray, viewers: np.ndarray,
             follows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`(n, K)` int32 candidate ids, -1 for empty slots.

    live: `(n_streamers,)` bool; viewers: `(n_streamers,)` counts; follows: `(n, F)`.
    """
    n, k = len(follows), cfg.n_candidates
    live_ids = np.flatnonzero(live).astype(np.int32)  # int32 halves the compare costs
    n_trend = min(cfg.trending_slots, len(live_ids))
    order = np.argsort(-viewers[live_ids], kind="stable")
    trending, others = live_ids[order[:n_trend]], rng.permutation(live_ids[order[n_trend:]])
    width = k - n_trend
    offsets = rng.integers(0, max(len(others), 1), size=(n, 1))
    out = np.empty((n, k), dtype=np.int32)

    def fill(rows: slice) -> None:
        followed = _live_follows(follows[rows], live, cfg.followed_slots)
        window = _window(others, offsets[rows], width)
        pool = np.concatenate([followed, np.broadcast_to(trending, (len(window), n_trend)),
                               window], axis=1)
        out[rows] = _first_distinct(pool, n_followed=followed.shape[1], k=k)

    for_row_chunks(fill, n)
    return out


def _live_follows(follows: np.ndarray, live: np.ndarray, slots: int) -> np.ndarray:
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


def candidate_features(topics: np.ndarray, stats: np.ndarray, viewer: np.ndarray,
                       pair: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """`(n, K, len(CANDIDATE_FEATURES))` float32 features of the candidate table.

    topics: `(n, K, topic_dim)` and stats: `(n, K, 6)` float32 streamer rows (zeros for empty
    slots); viewer: `(n, 2 * topic_dim + ...)` viewer features (profile first, then recent
    topics); pair: `(n, K, 3)` followed, watching now, log minutes watched before.
    Writes into `out` when given.
    """
    d, n_pair = topics.shape[2], pair.shape[2]
    if out is None:
        out = np.empty((*topics.shape[:2], 2 + n_pair + stats.shape[2]), np.float32)
    profile_and_recent = viewer[:, : 2 * d].reshape(len(viewer), 2, d).transpose(0, 2, 1)
    out[:, :, :2] = np.matmul(topics, profile_and_recent)  # (n, K, 2), fastest on CPU
    out[:, :, 2: 2 + n_pair] = pair
    out[:, :, 2 + n_pair:] = stats
    return out
