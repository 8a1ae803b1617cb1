"""Viewer sessions: hidden tastes and patience, and what the platform has logged of them.

One slot per concurrent session. Hidden: true interests (drifting toward what is
watched), patience, gift propensity. Logged and observable: an interest profile built from
watch history, recent topic exposure (which also tires the viewer), follows, per-streamer
watched minutes, the stream watched now, and this session's counters. When a session ends
the viewer comes back (same slot, same history) or a new viewer with no history arrives.
"""

from __future__ import annotations

import numpy as np

from liveq.sim.config import LiveStreamConfig
from liveq.sim.streamers import MINUTES_PER_DAY, array_state, load_array_state, unit_rows

VIEWER_FEATURES = ("tod_sin", "tod_cos", "session_step", "session_minutes", "last_click",
                   "last_watch", "follows", "is_new", "days", "current_live")


class Viewers:
    """State of `n` concurrent viewer sessions."""

    def __init__(self, cfg: LiveStreamConfig, n: int, rng: np.random.Generator):
        self.cfg, self.n = cfg, n
        d = cfg.topic_dim
        self.interest = np.zeros((n, d), dtype=np.float32)
        self.profile = np.zeros((n, d), dtype=np.float32)
        self.recent = np.zeros((n, d), dtype=np.float32)
        self.gift_propensity = np.zeros(n, dtype=np.float32)
        self.follows = np.full((n, cfg.max_follows), -1, dtype=np.int32)
        self.hist_ids = np.full((n, cfg.history_slots), -1, dtype=np.int32)
        self.hist_minutes = np.zeros((n, cfg.history_slots), dtype=np.float32)
        self.days = np.zeros(n, dtype=np.int64)
        self.current = np.full(n, -1, dtype=np.int32)
        self.patience = np.zeros(n, dtype=np.float32)
        self.step = np.zeros(n, dtype=np.int64)
        self.minutes = np.zeros(n, dtype=np.float32)
        self.sat_sum = np.zeros(n, dtype=np.float32)
        self.clicks = np.zeros(n, dtype=np.float32)
        self.last_click = np.zeros(n, dtype=np.float32)
        self.last_watch = np.zeros(n, dtype=np.float32)
        self.will_return = np.zeros(n, dtype=bool)
        slots = np.arange(n)
        self.new_viewers(slots, rng)
        self.start_sessions(slots, rng)

    def new_viewers(self, slots: np.ndarray, rng: np.random.Generator) -> None:
        """Replace the viewers in `slots` with newcomers: no profile, follows or history."""
        m, d = len(slots), self.cfg.topic_dim
        self.interest[slots] = unit_rows(rng.normal(size=(m, d))).astype(np.float32)
        self.profile[slots] = 0.0
        self.gift_propensity[slots] = rng.lognormal(-0.5, 1.0, size=m)
        self.follows[slots] = -1
        self.hist_ids[slots] = -1
        self.hist_minutes[slots] = 0.0
        self.days[slots] = 0

    def establish(self, slots: np.ndarray, topics: np.ndarray,
                  rng: np.random.Generator) -> None:
        """Give the viewers in `slots` a past: a logged profile, days active, follows, history.

        Follows and history go to the best topic matches among a random sample of streamers.
        """
        m, d, n_streamers = len(slots), self.cfg.topic_dim, len(topics)
        noisy = unit_rows(self.interest[slots] + 0.5 * rng.normal(size=(m, d)) / np.sqrt(d))
        self.profile[slots] = 0.8 * noisy
        self.days[slots] = rng.geometric(0.2, size=m)
        sample = rng.integers(0, n_streamers, size=(m, 20))
        match = np.einsum("msd,md->ms", topics[sample], self.interest[slots])
        best = np.take_along_axis(sample, np.argsort(-match, axis=1)[:, :3], axis=1)
        n_follow = min(3, self.cfg.max_follows)
        self.follows[slots, -n_follow:] = best[:, :n_follow]
        n_hist = min(3, self.cfg.history_slots)
        self.hist_ids[slots, :n_hist] = best[:, :n_hist]
        self.hist_minutes[slots, :n_hist] = rng.uniform(20, 120, size=(m, n_hist))

    def start_sessions(self, slots: np.ndarray, rng: np.random.Generator) -> None:
        cfg = self.cfg
        self.patience[slots] = rng.uniform(cfg.patience_min, cfg.patience_max, size=len(slots))
        self.recent[slots] = 0.0
        self.current[slots] = -1
        for counter in (self.step, self.minutes, self.sat_sum, self.clicks,
                        self.last_click, self.last_watch):
            counter[slots] = 0

    def next_sessions(self, slots: np.ndarray, rng: np.random.Generator) -> None:
        """Start the next session in `slots`: the same viewer if they return, else a new one."""
        back = self.will_return[slots]
        self.days[slots[back]] += 1
        self.new_viewers(slots[~back], rng)
        self.start_sessions(slots, rng)

    def followed(self, ids: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        """`(n, K)` bool: candidate `ids (n, K)` of viewers `rows` is on their follow list."""
        found = np.zeros(ids.shape, dtype=bool)
        for col in self.follows[rows].T:  # a loop over a few columns beats a 3-D broadcast
            if (col >= 0).any():
                found |= ids == col[:, None]
        return found & (ids >= 0)

    def history_minutes(self, ids: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        """`(n, K)` minutes the viewers `rows` have watched each candidate before."""
        total = np.zeros(ids.shape, dtype=np.float32)
        for col, minutes in zip(self.hist_ids[rows].T, self.hist_minutes[rows].T, strict=True):
            if (col >= 0).any():
                total += (ids == col[:, None]) * minutes[:, None]
        return total

    def add_follow(self, rows: np.ndarray, ids: np.ndarray) -> None:
        """Append follows, dropping the oldest when the list is full; skips existing ones."""
        fresh = ~(self.follows[rows] == ids[:, None]).any(axis=1)
        rows, ids = rows[fresh], ids[fresh]
        self.follows[rows, :-1] = self.follows[rows, 1:]
        self.follows[rows, -1] = ids

    def add_history(self, rows: np.ndarray, ids: np.ndarray, minutes: np.ndarray) -> None:
        """Add watched minutes; a streamer not yet remembered replaces the least-watched one."""
        hit = self.hist_ids[rows] == ids[:, None]
        known = hit.any(axis=1)
        col = np.where(known, hit.argmax(axis=1), self.hist_minutes[rows].argmin(axis=1))
        self.hist_minutes[rows[~known], col[~known]] = 0.0
        self.hist_ids[rows, col] = ids
        self.hist_minutes[rows, col] += minutes

    def feature_matrix(self, clock: int, current_live: np.ndarray) -> np.ndarray:
        """`(n, 2 * topic_dim + 10)` float32: profile, recent exposure, VIEWER_FEATURES."""
        d = self.cfg.topic_dim
        angle = 2 * np.pi * (clock % MINUTES_PER_DAY) / MINUTES_PER_DAY
        columns = (np.sin(angle), np.cos(angle), self.step / self.cfg.max_session_steps,
                   np.log1p(self.minutes) / 5.0, self.last_click, self.last_watch,
                   (self.follows >= 0).sum(axis=1) / self.cfg.max_follows,
                   self.days == 0, np.log1p(self.days) / 3.0, current_live)
        out = np.empty((self.n, 2 * d + len(columns)), dtype=np.float32)
        out[:, :d], out[:, d: 2 * d] = self.profile, self.recent
        for j, column in enumerate(columns):
            out[:, 2 * d + j] = column
        return out

    def state(self) -> dict[str, np.ndarray]:
        return array_state(self)

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        load_array_state(self, state)
