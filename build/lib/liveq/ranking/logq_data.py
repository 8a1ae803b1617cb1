"""Logged interactions as offline-RL transitions, and the features the logged-Q models read.

One transition per logged interaction of a user, in the user's time order:

* state  = the user's last `H` interactions (items and start steps) and the clock;
* action = the streamer the user went on to watch, chosen among the streamers *live* at
  that step (a streamer is live at step `t` when someone in the log watches it at `t`,
  the LiveRec availability rule);
* reward = 1 per interaction, plus `watch_reward * log1p(minutes watched)` (minutes from
  the `watch` column, else `(stop - start) * step_minutes`);
* next state = the same user's history after the action, at the time of their next
  interaction; the episode ends (terminal) at the user's last interaction in the log, or
  when the next one starts more than `max_gap_steps` after this one stops (a new visit).

Features are computed from a query's own history window, so a model scores a test query
exactly as it saw training states, and unseen users or items still get features.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from liveq.core.units import MINUTES_PER_DAY
from liveq.data.log import InteractionLog
from liveq.ranking.availability import LiveIndex, slots, viewers_at

STATE_FEATURES = ("time_of_day_sin", "time_of_day_cos", "log_gap_minutes", "history_fill")
CANDIDATE_FEATURES = ("log_repeats", "in_history", "recency", "position", "log_viewers")


class LoggedTransitions(NamedTuple):
    """Interactions sorted by (user, start, item); row `i`'s history is rows `< i` of its user."""

    user: np.ndarray  # (n,) int32
    item: np.ndarray  # (n,) int32
    start: np.ndarray  # (n,) int32 step at which the interaction starts
    first: np.ndarray  # (n,) int64 first row of the same user
    next_row: np.ndarray  # (n,) int64 the user's next interaction, -1 where the episode ends
    reward: np.ndarray  # (n,) float32
    viewers: np.ndarray  # (n,) int32 other users watching `item` at `start`


def sample_live(live: LiveIndex, time: np.ndarray, k: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to `k` distinct items live at each `time[i]`: items, viewers and a validity mask,
    all `(n, k)`.

    Where at most `k` items are live, all of them (the rest of the row is invalid); else
    `k` uniform draws with replacement, repeated draws marked invalid. Every `time[i]`
    must have at least one live item (true at the start of a logged row).
    """
    slot, _ = slots(live, time)
    lo = live.offsets[slot][:, None]
    count = (live.offsets[slot + 1] - live.offsets[slot])[:, None]  # (n, 1)
    column = np.arange(k)
    drawn = (rng.random((len(time), k)) * count).astype(np.int64)
    small = count <= k
    draws = lo + np.where(small, np.minimum(column, count - 1), drawn)
    valid = np.where(small, column < count, first_occurrence(draws))
    return live.items[draws], live.viewers[draws], valid


def first_occurrence(values: np.ndarray) -> np.ndarray:
    """`(n, k)` bool: True where the entry is the first of its value in its row."""
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    repeat = np.c_[np.zeros(len(values), bool), ordered[:, 1:] == ordered[:, :-1]]
    first = np.empty_like(repeat)
    np.put_along_axis(first, order, ~repeat, axis=1)
    return first


def build_transitions(log: InteractionLog, live: LiveIndex, *, max_gap_steps: float,
                      watch_reward: float) -> LoggedTransitions:
    """One transition per row of `log`, in (user, start, item) order."""
    frame = log.frame.sort("user", "start", "item")
    user = frame["user"].to_numpy().astype(np.int32)
    item = frame["item"].to_numpy().astype(np.int32)
    start = frame["start"].to_numpy().astype(np.int32)
    stop = frame["stop"].to_numpy().astype(np.int32)
    n = len(user)
    new_user = np.r_[True, user[1:] != user[:-1]]
    first = np.maximum.accumulate(np.where(new_user, np.arange(n), 0))
    same_user_next = np.r_[~new_user[1:], False]
    gap = np.r_[start[1:] - stop[:-1], 0]
    next_row = np.where(same_user_next & (gap <= max_gap_steps), np.arange(n) + 1, -1)
    if "watch" in frame.columns:
        minutes = frame["watch"].fill_null(0.0).to_numpy().astype(np.float64)
    else:
        minutes = (stop - start).astype(np.float64) * log.step_minutes
    reward = (1.0 + watch_reward * np.log1p(np.maximum(minutes, 0.0))).astype(np.float32)
    others = np.maximum(viewers_at(live, item, start) - 1, 0).astype(np.int32)
    return LoggedTransitions(user, item, start, first.astype(np.int64),
                             next_row.astype(np.int64), reward, others)


def history_of(trans: LoggedTransitions, rows: np.ndarray,
               length: int) -> tuple[np.ndarray, np.ndarray]:
    """The last `length` items before each row and their start steps, `(n, length)` int32,
    most recent last, -1 padded on the left."""
    idx = rows[:, None] + np.arange(-length, 0)  # (n, length)
    valid = idx >= trans.first[rows][:, None]
    safe = idx.clip(min=0)
    history = np.where(valid, trans.item[safe], -1).astype(np.int32)
    history_time = np.where(valid, trans.start[safe], -1).astype(np.int32)
    return history, history_time


def left_align(history: np.ndarray, history_time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move the valid (>= 0) entries of each row to the end, keeping their order."""
    order = np.argsort(history >= 0, axis=1, kind="stable")
    return (np.take_along_axis(history, order, axis=1),
            np.take_along_axis(history_time, order, axis=1))


def state_features(history: np.ndarray, history_time: np.ndarray, time: np.ndarray,
                   step_minutes: float) -> np.ndarray:
    """`(n, len(STATE_FEATURES))` float32: the clock's time of day, minutes since the last
    interaction (log1p, scaled), and the share of the history window that is filled."""
    valid = history >= 0
    last_time = np.where(valid, history_time, -1).max(axis=1)  # (n,)
    gap_minutes = np.where(last_time >= 0, (time - last_time) * step_minutes, 0.0)
    angle = 2 * np.pi * ((time * step_minutes) % MINUTES_PER_DAY) / MINUTES_PER_DAY
    return np.stack([np.sin(angle), np.cos(angle),
                     np.log1p(np.maximum(gap_minutes, 0.0)) / 10.0,
                     valid.mean(axis=1)], axis=1).astype(np.float32)


def candidate_features(history: np.ndarray, history_time: np.ndarray, time: np.ndarray,
                       query: np.ndarray, cand_item: np.ndarray,
                       cand_viewers: np.ndarray, step_minutes: float) -> np.ndarray:
    """`(total, len(CANDIDATE_FEATURES))` float32 for candidates of queries `query`:

    log1p(times the candidate is in the history window), whether it is, recency
    `exp(-minutes since its last start / 1 day)`, position `1 / (1 + newer history
    entries)` (1 for the last item watched), log1p(other users watching it now).
    """
    length = history.shape[1]
    match = history[query] == cand_item[:, None]  # (total, H)
    repeats = match.sum(axis=1)
    last = np.where(match, np.arange(length), -1).max(axis=1)  # (total,)
    seen = last >= 0
    at = last.clip(min=0)
    newer = np.cumsum((history >= 0)[:, ::-1], axis=1)[:, ::-1] - (history >= 0)  # (n, H)
    minutes = (time[query] - history_time[query, at]) * step_minutes
    recency = np.where(seen, np.exp(-np.maximum(minutes, 0.0) / MINUTES_PER_DAY), 0.0)
    position = np.where(seen, 1.0 / (1.0 + newer[query, at]), 0.0)
    return np.stack([np.log1p(repeats), seen, recency, position,
                     np.log1p(np.maximum(cand_viewers, 0))], axis=1).astype(np.float32)
