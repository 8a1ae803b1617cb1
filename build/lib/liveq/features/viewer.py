"""Viewer features from what a platform logs of its viewers.

`ViewerRecord` is the logged state of `n` viewers at one moment, as plain arrays a
service can keep from its own event log; `viewer_features` turns it into the observation's
viewer vector. The `record_*` and `add_*` functions are the logging rules that keep those
arrays up to date from events (a watch, a follow); they update the arrays they are given
in place, because the simulator runs them on every step of large batches. The simulator
uses exactly these functions, so a service that applies them to its events computes the
same features the agent was trained on.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from liveq.core.units import MINUTES_PER_DAY
from liveq.features.schema import (
    DAYS_LOG_SCALE,
    SESSION_MINUTES_LOG_SCALE,
    viewer_width,
)


class ViewerRecord(NamedTuple):
    """What the platform has logged of `n` viewers, one row each."""

    profile: np.ndarray  # (n, topic_dim) float32 interest profile (see record_watches)
    recent: np.ndarray  # (n, topic_dim) float32 recent topic exposure (see record_watches)
    session_steps: np.ndarray  # (n,) int recommendations served this session
    session_minutes: np.ndarray  # (n,) float32 minutes watched this session
    last_click: np.ndarray  # (n,) opened the previous recommendation (0/1)
    last_watch: np.ndarray  # (n,) share of the previous step spent watching
    n_follows: np.ndarray  # (n,) int streamers followed
    days_active: np.ndarray  # (n,) int days the viewer came back before this visit
    watching_live: np.ndarray  # (n,) bool watching a stream that is still live


def viewer_features(record: ViewerRecord, clock: int | np.ndarray, *,
                    max_session_steps: int, max_follows: int) -> np.ndarray:
    """`(n, 2 * topic_dim + len(VIEWER_SCHEMA))` float32 viewer vectors.

    clock: platform minutes since a midnight (a scalar, or `(n,)` per viewer); only the
    time of day is used. max_session_steps and max_follows scale their counts to [0, 1].
    """
    n, d = record.profile.shape
    angle = 2 * np.pi * (np.asarray(clock) % MINUTES_PER_DAY) / MINUTES_PER_DAY
    columns = (np.sin(angle), np.cos(angle), record.session_steps / max_session_steps,
               np.log1p(record.session_minutes) / SESSION_MINUTES_LOG_SCALE,
               record.last_click, record.last_watch,
               np.minimum(record.n_follows, max_follows) / max_follows,
               record.days_active == 0, np.log1p(record.days_active) / DAYS_LOG_SCALE,
               record.watching_live)
    out = np.empty((n, viewer_width(d)), dtype=np.float32)
    out[:, :d], out[:, d: 2 * d] = record.profile, record.recent
    for j, column in enumerate(columns):
        out[:, 2 * d + j] = column
    return out


def record_watches(profile: np.ndarray, recent: np.ndarray, rows: np.ndarray,
                   topic: np.ndarray, share: np.ndarray, *, exposure_decay: float,
                   profile_rate: float) -> None:
    """Fold one step of watching into the topic aggregates of every viewer, in place.

    Every viewer's recent exposure decays by `exposure_decay`; the viewers `rows` who
    watched a stream with topic `topic (m, d)` for share `share (m, 1)` float32 of the step
    add it to their exposure and move their profile toward it by `profile_rate * share`.
    """
    recent *= np.float32(exposure_decay)
    recent[rows] += share * topic
    profile[rows] += profile_rate * share * (topic - profile[rows])


def add_follow(follows: np.ndarray, rows: np.ndarray, ids: np.ndarray) -> None:
    """Append follows `ids` to the lists `follows (n, F)` of `rows`, in place.

    The newest follow is last; the oldest is dropped when a list is full; a streamer
    already on the list is not added again. -1 marks an empty place.
    """
    fresh = ~(follows[rows] == ids[:, None]).any(axis=1)
    rows, ids = rows[fresh], ids[fresh]
    follows[rows, :-1] = follows[rows, 1:]
    follows[rows, -1] = ids


def add_history(hist_ids: np.ndarray, hist_minutes: np.ndarray, rows: np.ndarray,
                ids: np.ndarray, minutes: np.ndarray) -> None:
    """Add watched `minutes` of streamers `ids` to the histories of `rows`, in place.

    A history remembers the `H` streamers (`hist_ids (n, H)`, -1 empty) a viewer watched
    most; a streamer not yet remembered replaces the least-watched one.
    """
    hit = hist_ids[rows] == ids[:, None]
    known = hit.any(axis=1)
    col = np.where(known, hit.argmax(axis=1), hist_minutes[rows].argmin(axis=1))
    hist_minutes[rows[~known], col[~known]] = 0.0
    hist_ids[rows, col] = ids
    hist_minutes[rows, col] += minutes


def is_followed(ids: np.ndarray, follows: np.ndarray) -> np.ndarray:
    """`(n, K)` bool: streamer `ids (n, K)` (-1 empty) is on the viewer's `follows (n, F)`."""
    found = np.zeros(ids.shape, dtype=bool)
    for col in follows.T:  # a loop over a few columns beats a 3-D broadcast
        if (col >= 0).any():
            found |= ids == col[:, None]
    return found & (ids >= 0)


def minutes_watched(ids: np.ndarray, hist_ids: np.ndarray,
                    hist_minutes: np.ndarray) -> np.ndarray:
    """`(n, K)` float32 minutes each viewer's history holds for streamers `ids (n, K)`."""
    total = np.zeros(ids.shape, dtype=np.float32)
    for col, minutes in zip(hist_ids.T, hist_minutes.T, strict=True):
        if (col >= 0).any():
            total += (ids == col[:, None]) * minutes[:, None]
    return total
