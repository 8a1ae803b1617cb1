"""The streamer catalogue: who is live, what they are about, and what the platform knows.

Each streamer slot has hidden traits (topic vector, quality, attractiveness, which exceeds
quality for clickbait streamers) and a daily schedule (start minute, stream length, chance
of streaming on a given day). The platform observes only what it can log: viewer counts,
minutes live so far, and running estimates of click-through and watch fraction, which are
uninformed for newcomers (cold start). Offline slots are taken over by new streamers.
"""

from __future__ import annotations

import numpy as np

from liveq.sim.config import LiveStreamConfig
from liveq.sim.response import sigmoid, watch_fraction

MINUTES_PER_DAY = 1440
PRIOR_CTR = 0.3
PRIOR_WATCH = 0.5
ORGANIC_MATCH = 0.4  # outside viewers pick streams they like: a mild average topic match
# Layout of the per-streamer feature table after the topic columns.
STREAMER_STATS = ("log_viewers", "est_ctr", "est_watch", "confidence", "hours_live", "is_new")


def array_state(obj: object) -> dict[str, np.ndarray]:
    """Copies of every numpy array attribute of `obj` (its whole state, for checkpoints)."""
    return {k: v.copy() for k, v in vars(obj).items() if isinstance(v, np.ndarray)}


def load_array_state(obj: object, state: dict[str, np.ndarray]) -> None:
    """Restore `array_state` output, keeping each attribute's dtype."""
    for key, value in state.items():
        setattr(obj, key, np.array(value, dtype=getattr(obj, key).dtype))


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


class Streamers:
    """Streamer state, stepped once per tick for the whole platform."""

    def __init__(self, cfg: LiveStreamConfig, rng: np.random.Generator):
        self.cfg = cfg
        n = cfg.n_streamers
        self.topic = np.zeros((n, cfg.topic_dim), dtype=np.float32)
        self.quality = np.zeros(n, dtype=np.float32)
        self.attract = np.zeros(n, dtype=np.float32)
        self.organic = np.zeros(n, dtype=np.float32)
        self.start_minute = np.zeros(n, dtype=np.int64)
        self.duration = np.zeros(n, dtype=np.int64)
        self.born_tick = np.zeros(n, dtype=np.int64)
        self.live_today = np.zeros(n, dtype=bool)
        self.impressions = np.zeros(n, dtype=np.float64)
        self.clicks = np.zeros(n, dtype=np.float64)
        self.watch_sum = np.zeros(n, dtype=np.float64)
        self.watchers = np.zeros(n, dtype=np.int64)
        self.live = np.zeros(n, dtype=bool)
        self.minutes_live = np.zeros(n, dtype=np.int64)
        self.viewers = np.zeros(n, dtype=np.float32)
        self.spawn(np.arange(n), rng, tick=-10**6)

    def spawn(self, slots: np.ndarray, rng: np.random.Generator, tick: int) -> None:
        """Fill `slots` with brand-new streamers (no history)."""
        cfg, m = self.cfg, len(slots)
        self.topic[slots] = unit_rows(rng.normal(size=(m, cfg.topic_dim))).astype(np.float32)
        quality = rng.normal(0.0, 0.7, size=m)
        bait = rng.random(m) < cfg.clickbait_share
        self.quality[slots] = quality - 0.5 * bait
        self.attract[slots] = quality + np.where(bait, cfg.clickbait_gap - 0.5, 0.0)
        self.organic[slots] = cfg.organic_audience * rng.lognormal(0.0, 0.8, size=m)
        # Evening-heavy start times: a mix of a wide spread and a prime-time peak.
        prime = rng.random(m) < cfg.prime_time_share
        start = np.where(prime, rng.normal(cfg.prime_time_hour * 60,
                                           cfg.prime_time_spread_hours * 60, size=m),
                         rng.uniform(0, MINUTES_PER_DAY, size=m))
        self.start_minute[slots] = np.mod(start, MINUTES_PER_DAY).astype(np.int64)
        hours = rng.gamma(4.0, cfg.mean_stream_hours / 4.0, size=m)
        self.duration[slots] = np.clip(hours * 60, 30, 12 * 60).astype(np.int64)
        self.born_tick[slots] = tick
        self.live_today[slots] = rng.random(m) < cfg.live_day_prob
        for stat in (self.impressions, self.clicks, self.watch_sum):
            stat[slots] = 0.0

    def new_day(self, rng: np.random.Generator) -> None:
        self.live_today = rng.random(self.cfg.n_streamers) < self.cfg.live_day_prob

    def replace_offline(self, rng: np.random.Generator, tick: int) -> None:
        """Newcomers take over offline slots at `new_streamer_rate` per step."""
        leaving = (~self.live) & (rng.random(self.cfg.n_streamers) < self.cfg.new_streamer_rate)
        if leaving.any():
            self.spawn(np.flatnonzero(leaving), rng, tick)

    def update_live(self, clock: int) -> None:
        """Recompute who is live at `clock` (minutes) and their viewer counts."""
        since = np.mod(clock % MINUTES_PER_DAY - self.start_minute, MINUTES_PER_DAY)
        self.live = self.live_today & (since < self.duration)
        self.minutes_live = np.where(self.live, since, 0)
        ramp = np.minimum(1.0, (self.minutes_live + 10.0) / 60.0)
        popularity = np.exp(0.5 * self.attract + 0.5 * self.quality)
        self.viewers = np.where(self.live, self.organic * popularity * ramp + self.watchers, 0.0)
        self.viewers = self.viewers.astype(np.float32)

    def log_organic(self, rng: np.random.Generator) -> None:
        """Log one step of outside viewers' impressions, clicks and watch on live streams.

        Outside traffic is what makes the platform's estimates informative; a newcomer has
        none of it yet (cold start).
        """
        cfg, live = self.cfg, np.flatnonzero(self.live)
        shown = rng.poisson(cfg.organic_impressions * self.viewers[live] / cfg.organic_audience)
        p_click = sigmoid(self.attract[live] + cfg.match_weight * ORGANIC_MATCH
                          - cfg.no_click_utility)
        clicks = rng.binomial(shown, p_click)
        gap = np.maximum(self.attract[live] - self.quality[live], 0.0)
        frac = watch_fraction(self.quality[live] + cfg.match_weight * ORGANIC_MATCH
                              - cfg.disappointment * gap)
        self.impressions[live] += shown
        self.clicks[live] += clicks
        self.watch_sum[live] += clicks * frac

    def minutes_left(self, ids: np.ndarray) -> np.ndarray:
        """Minutes until each stream in `ids` ends (0 when offline)."""
        return np.where(self.live[ids], self.duration[ids] - self.minutes_live[ids], 0)

    def record(self, shown: np.ndarray, clicked: np.ndarray, watch_frac: np.ndarray) -> None:
        """Log impressions of `shown` ids (-1 = none) and clicks with their watch fraction."""
        n = self.cfg.n_streamers
        flat = shown[shown >= 0]
        self.impressions += np.bincount(flat, minlength=n)
        hit = clicked >= 0
        self.clicks += np.bincount(clicked[hit], minlength=n)
        self.watch_sum += np.bincount(clicked[hit], weights=watch_frac[hit], minlength=n)

    def feature_tables(self, tick: int) -> tuple[np.ndarray, np.ndarray]:
        """Topics `(n_streamers + 1, topic_dim)` and STREAMER_STATS `(n_streamers + 1, 6)`.

        float32; the extra last row is all zeros and describes an empty candidate slot.
        """
        prior = self.cfg.cold_start_prior
        est_ctr = (self.clicks + prior * PRIOR_CTR) / (self.impressions + prior)
        est_watch = (self.watch_sum + prior * PRIOR_WATCH) / (self.clicks + prior)
        is_new = (tick - self.born_tick) * self.cfg.step_minutes < MINUTES_PER_DAY
        stats = np.zeros((self.cfg.n_streamers + 1, len(STREAMER_STATS)), np.float32)
        for col, values in enumerate((np.log1p(self.viewers) / 8.0, est_ctr, est_watch,
                                      np.log1p(self.impressions) / 10.0,
                                      self.minutes_live / 300.0, is_new)):
            stats[:-1, col] = values
        topics = np.concatenate([self.topic, np.zeros((1, self.cfg.topic_dim), np.float32)])
        return topics, stats

    def state(self) -> dict[str, np.ndarray]:
        return array_state(self)

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        load_array_state(self, state)
