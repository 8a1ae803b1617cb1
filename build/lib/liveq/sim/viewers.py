"""Viewer sessions: hidden tastes and patience, and what the platform has logged of them.

One slot per concurrent session. Hidden: true interests (drifting toward what is
watched), patience, gift propensity. Logged and observable: an interest profile built from
watch history, recent topic exposure (which also tires the viewer), follows, per-streamer
watched minutes, the stream watched now, and this session's counters. When a session ends
the viewer comes back (same slot, same history) or a new viewer with no history arrives.
"""

from __future__ import annotations

import numpy as np

from liveq.features.viewer import ViewerRecord, add_follow, add_history, record_watches
from liveq.sim.config import LiveStreamConfig
from liveq.sim.response import Outcome, patience_change
from liveq.sim.streamers import array_state, load_array_state, unit_rows


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
        traits = self.cfg.viewer_traits
        self.gift_propensity[slots] = rng.lognormal(traits.gift_log_mean, traits.gift_log_sd,
                                                    size=m)
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
        traits = self.cfg.viewer_traits
        noise = traits.veteran_profile_noise * rng.normal(size=(m, d)) / np.sqrt(d)
        self.profile[slots] = traits.veteran_profile_norm * unit_rows(self.interest[slots] + noise)
        self.days[slots] = rng.geometric(traits.veteran_days_p, size=m)
        sample = rng.integers(0, n_streamers, size=(m, traits.veteran_sample))
        match = np.einsum("msd,md->ms", topics[sample], self.interest[slots])
        picks = traits.veteran_picks
        best = np.take_along_axis(sample, np.argsort(-match, axis=1)[:, :picks], axis=1)
        n_follow = min(picks, self.cfg.max_follows)
        self.follows[slots, -n_follow:] = best[:, :n_follow]
        n_hist = min(picks, self.cfg.history_slots)
        self.hist_ids[slots, :n_hist] = best[:, :n_hist]
        self.hist_minutes[slots, :n_hist] = rng.uniform(
            traits.veteran_minutes_min, traits.veteran_minutes_max, size=(m, n_hist))

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

    def update(self, out: Outcome, active: np.ndarray, topics: np.ndarray) -> None:
        """Move every session on by one step's `out`come; rows not `active` only decay.

        topics: `(n_streamers, topic_dim)` streamer topics, to know what was watched.
        """
        cfg = self.cfg
        hit = out.clicked_id >= 0
        change = np.where(active, patience_change(out.sat, hit, cfg), 0.0)
        self.patience = np.minimum(self.patience + change, cfg.patience_cap).astype(np.float32)
        rows = np.flatnonzero(hit)
        topic = topics[out.clicked_id[rows]]  # (n_hit, topic_dim)
        weight = out.fraction[rows, None].astype(np.float32)
        record_watches(self.profile, self.recent, rows, topic, weight,
                       exposure_decay=cfg.fatigue_decay, profile_rate=cfg.profile_rate)
        drifted = self.interest[rows] + cfg.interest_drift * weight * topic
        self.interest[rows] = drifted / np.linalg.norm(drifted, axis=1, keepdims=True)
        add_history(self.hist_ids, self.hist_minutes, rows, out.clicked_id[rows],
                    out.minutes[rows].astype(np.float32))
        fans = np.flatnonzero(out.follow_id >= 0)
        add_follow(self.follows, fans, out.follow_id[fans])
        self.current = np.where(hit, out.clicked_id, np.where(active, -1, self.current))
        self.step += active
        self.minutes += out.minutes.astype(np.float32)
        self.sat_sum += out.sat.astype(np.float32)
        self.clicks += hit
        self.last_click = np.where(active, hit, self.last_click).astype(np.float32)
        self.last_watch = np.where(active, out.fraction, self.last_watch).astype(np.float32)

    def logged(self, watching_live: np.ndarray) -> ViewerRecord:
        """What the platform has logged of these sessions (views of the state, not copies).

        watching_live: `(n,)` the stream each viewer watches now is still live.
        """
        return ViewerRecord(self.profile, self.recent, self.step, self.minutes,
                            self.last_click, self.last_watch, (self.follows >= 0).sum(axis=1),
                            self.days, watching_live)

    def state(self) -> dict[str, np.ndarray]:
        return array_state(self)

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        load_array_state(self, state)
