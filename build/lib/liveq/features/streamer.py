"""Candidate features from what a platform logs of its streamers and of each viewer.

`StreamerRecord` is the logged state of the streamer catalogue (topic, live state, and
the impressions, clicks and watch share counted so far); `streamer_tables` turns it into
the per-streamer rows of the candidate table. `pair_features` gives the viewer-streamer
facts (followed, watching now, minutes watched before) and `candidate_features` joins
both with the viewer vector. `count_engagement` and `add_engagement` are the logging rules
for the counters. The simulator and the replay codec build their candidate features with
these functions, so a service applying them to its own logs computes the same numbers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from liveq.features.schema import (
    HISTORY_MINUTES_LOG_SCALE,
    IMPRESSIONS_LOG_SCALE,
    MINUTES_LIVE_SCALE,
    NEW_STREAMER_MINUTES,
    PAIR_SCHEMA,
    PRIOR_CTR,
    PRIOR_WATCH,
    STREAMER_SCHEMA,
    VIEWERS_LOG_SCALE,
)
from liveq.features.viewer import is_followed, minutes_watched


class StreamerRecord(NamedTuple):
    """What the platform knows of `m` streamers, one row each."""

    topic: np.ndarray  # (m, topic_dim) float32 topic vector (category embedding)
    viewers: np.ndarray  # (m,) float32 audience now, 0 when offline
    minutes_live: np.ndarray  # (m,) int minutes since the stream started, 0 when offline
    impressions: np.ndarray  # (m,) float64 times shown, all viewers, since first seen
    clicks: np.ndarray  # (m,) float64 times opened
    watch_sum: np.ndarray  # (m,) float64 sum over clicks of the share of the step watched
    age_minutes: np.ndarray  # (m,) float minutes since the streamer was first seen


class Engagement(NamedTuple):
    """Impressions, clicks and watch share logged for streamers `ids` over one step."""

    ids: np.ndarray  # (m,) int streamer rows
    impressions: np.ndarray  # (m,)
    clicks: np.ndarray  # (m,)
    watch: np.ndarray  # (m,) sum of watch shares of the clicks


def count_engagement(n_streamers: int, shown: np.ndarray, clicked: np.ndarray,
                     watch_share: np.ndarray) -> Engagement:
    """Per-streamer counts of one step's sessions for every streamer row.

    shown: streamer ids shown (any shape, -1 = empty rank); clicked: `(n,)` id opened per
    session, -1 when none; watch_share: `(n,)` share of the step watched.
    """
    hit = clicked >= 0
    return Engagement(np.arange(n_streamers), np.bincount(shown[shown >= 0],
                                                          minlength=n_streamers),
                      np.bincount(clicked[hit], minlength=n_streamers),
                      np.bincount(clicked[hit], weights=watch_share[hit],
                                  minlength=n_streamers))


def add_engagement(impressions: np.ndarray, clicks: np.ndarray, watch_sum: np.ndarray,
                   events: Engagement) -> None:
    """Add `events` to the per-streamer counters (`StreamerRecord`'s), in place."""
    impressions[events.ids] += events.impressions
    clicks[events.ids] += events.clicks
    watch_sum[events.ids] += events.watch


def streamer_stats(record: StreamerRecord, *, prior_strength: float) -> np.ndarray:
    """`(m, len(STREAMER_SCHEMA))` float32 logged statistics of each streamer.

    The click-through and watch estimates shrink toward `PRIOR_CTR` and `PRIOR_WATCH`
    with the weight of `prior_strength` pseudo-impressions, so a newcomer is neither
    favoured nor buried before its first clicks.
    """
    est_ctr = (record.clicks + prior_strength * PRIOR_CTR) / (record.impressions
                                                              + prior_strength)
    est_watch = (record.watch_sum + prior_strength * PRIOR_WATCH) / (record.clicks
                                                                     + prior_strength)
    columns = (np.log1p(record.viewers) / VIEWERS_LOG_SCALE, est_ctr, est_watch,
               np.log1p(record.impressions) / IMPRESSIONS_LOG_SCALE,
               record.minutes_live / MINUTES_LIVE_SCALE,
               record.age_minutes < NEW_STREAMER_MINUTES)
    stats = np.zeros((len(record.viewers), len(STREAMER_SCHEMA)), np.float32)
    for col, values in enumerate(columns):
        stats[:, col] = values
    return stats


def streamer_tables(record: StreamerRecord, *,
                    prior_strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Topics `(m + 1, topic_dim)` and stats `(m + 1, len(STREAMER_SCHEMA))`, float32.

    The extra last row is all zeros: it describes an empty candidate slot, so candidate
    ids can index the tables with -1 mapped to `m`.
    """
    stats = np.zeros((len(record.viewers) + 1, len(STREAMER_SCHEMA)), np.float32)
    stats[:-1] = streamer_stats(record, prior_strength=prior_strength)
    topic = record.topic
    topics = np.concatenate([topic, np.zeros((1, topic.shape[1]), topic.dtype)])
    return topics, stats


def pair_features(ids: np.ndarray, follows: np.ndarray, watching: np.ndarray,
                  hist_ids: np.ndarray, hist_minutes: np.ndarray) -> np.ndarray:
    """`(n, K, len(PAIR_SCHEMA))` float32 viewer-candidate facts.

    ids: `(n, K)` candidate streamer ids, -1 for empty slots; follows: `(n, F)` follow
    lists; watching: `(n,)` id watched now, -1 for none; hist_ids, hist_minutes: `(n, H)`
    each viewer's remembered streamers and minutes (see `add_history`).
    """
    out = np.empty((*ids.shape, len(PAIR_SCHEMA)), dtype=np.float32)
    out[:, :, 0] = is_followed(ids, follows)
    out[:, :, 1] = (ids == watching[:, None]) & (ids >= 0)
    out[:, :, 2] = np.log1p(minutes_watched(ids, hist_ids, hist_minutes)) \
        / HISTORY_MINUTES_LOG_SCALE
    return out


def candidate_features(topics: np.ndarray, stats: np.ndarray, viewer: np.ndarray,
                       pair: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """`(n, K, len(CANDIDATE_SCHEMA))` float32 features of the candidate table.

    topics: `(n, K, topic_dim)` and stats: `(n, K, len(STREAMER_SCHEMA))` float32 rows of
    `streamer_tables` for each candidate (the zero row for empty slots); viewer: `(n, ...)`
    viewer vectors (profile and recent exposure first); pair: `pair_features` output.
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
