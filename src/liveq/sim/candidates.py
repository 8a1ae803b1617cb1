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
    followed = np.where((follows >= 0) & live[np.maximum(follows, 0)], follows, -1)
    followed = followed[:, ::-1][:, : max(cfg.followed_slots, 0)]  # newest follows first
    width = k - n_trend
    window = np.full((n, width), -1, dtype=np.int32)
    if len(others):
        offset = rng.integers(0, len(others), size=(n, 1))
        cols = np.arange(min(width, len(others)))
        window[:, : len(cols)] = others[(offset + cols) % len(others)]
    pool = np.concatenate([followed, np.broadcast_to(trending, (n, n_trend)), window], axis=1)
    out = np.empty((n, k), dtype=np.int32)

    def fill(rows: slice) -> None:
        out[rows] = _first_distinct(pool[rows], n_followed=followed.shape[1], k=k)

    for_row_chunks(fill, n)
    return out


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
