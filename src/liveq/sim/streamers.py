"""The streamer catalogue: who is live, what they are about, and what the platform knows.

Each streamer slot has hidden traits (topic vector, quality, attractiveness, which exceeds
quality for clickbait streamers) and a daily schedule (start minute, stream length, chance
of streaming on a given day). The platform observes only what it can log: viewer counts,
minutes live so far, and running estimates of click-through and watch fraction, which are
uninformed for newcomers (cold start). Offline slots are taken over by new streamers.
"""

from __future__ import annotations

import numpy as np

from liveq.core.numerics import sigmoid
from liveq.core.units import MINUTES_PER_DAY
from liveq.features.streamer import Engagement, StreamerRecord, add_engagement, streamer_tables
from liveq.sim.config import LiveStreamConfig
from liveq.sim.content import CONTENT_SLOTS, content_model, draw_content, render
from liveq.sim.response import watch_fraction


def array_state(obj: object) -> dict[str, np.ndarray]:
    """Copies of every numpy array attribute of `obj` (its whole state, for checkpoints)."""
    return {k: v.copy() for k, v in vars(obj).items() if isinstance(v, np.ndarray)}


def load_array_state(obj: object, state: dict[str, np.ndarray]) -> None:
    """Restore `array_state` output, keeping each attribute's dtype."""
    for key, value in state.items():
        setattr(obj, key, np.array(value, dtype=getattr(obj, key).dtype))


CONTENT_RIDGE = 1.0
"""Ridge penalty of the content-to-topic regression (`Streamers.content_topic`)."""

BORN_LONG_AGO = -10**6
"""Birth tick of the first catalogue: far enough back that none of them counts as new."""


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero instead of dividing by zero)."""
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
        if cfg.content.has_text():
            self._init_content(rng)
        self.spawn(np.arange(n), rng, tick=BORN_LONG_AGO)

    def _init_content(self, rng: np.random.Generator) -> None:
        """Text state: phrase ids and content columns per slot, and the seed their draws
        come from (the world's seed, so the world's own random stream is left untouched)."""
        n, seed_seq = self.cfg.n_streamers, getattr(rng.bit_generator, "seed_seq", None)
        entropy = seed_seq.entropy if isinstance(seed_seq, np.random.SeedSequence) else 0
        self.content_seed = np.array(int(entropy) % 2**63, dtype=np.int64)
        self.content_ids = np.zeros((n, CONTENT_SLOTS), dtype=np.int64)
        self.content = np.zeros((n, self.cfg.content.dim), dtype=np.float32)

    def spawn(self, slots: np.ndarray, rng: np.random.Generator, tick: int) -> None:
        """Fill `slots` with brand-new streamers (no history)."""
        cfg, traits, m = self.cfg, self.cfg.streamer_traits, len(slots)
        self.topic[slots] = unit_rows(rng.normal(size=(m, cfg.topic_dim))).astype(np.float32)
        quality = rng.normal(0.0, traits.quality_sd, size=m)
        bait = rng.random(m) < cfg.clickbait_share
        drop = traits.clickbait_quality_drop
        self.quality[slots] = quality - drop * bait
        self.attract[slots] = quality + np.where(bait, cfg.clickbait_gap - drop, 0.0)
        self.organic[slots] = cfg.organic_audience * rng.lognormal(0.0, traits.audience_spread,
                                                                   size=m)
        # Evening-heavy start times: a mix of a wide spread and a prime-time peak.
        prime = rng.random(m) < cfg.prime_time_share
        start = np.where(prime, rng.normal(cfg.prime_time_hour * 60,
                                           cfg.prime_time_spread_hours * 60, size=m),
                         rng.uniform(0, MINUTES_PER_DAY, size=m))
        self.start_minute[slots] = np.mod(start, MINUTES_PER_DAY).astype(np.int64)
        shape = traits.stream_hours_shape
        hours = rng.gamma(shape, cfg.mean_stream_hours / shape, size=m)
        self.duration[slots] = np.clip(hours * 60, traits.min_stream_minutes,
                                       traits.max_stream_minutes).astype(np.int64)
        self.born_tick[slots] = tick
        self.live_today[slots] = rng.random(m) < cfg.live_day_prob
        for stat in (self.impressions, self.clicks, self.watch_sum):
            stat[slots] = 0.0
        if cfg.content.has_text():
            self._write_content(slots, bait, tick)

    def _write_content(self, slots: np.ndarray, bait: np.ndarray, tick: int) -> None:
        """Titles and tags of the new streamers in `slots`, and their content columns."""
        text_rng = np.random.default_rng([int(self.content_seed), tick - BORN_LONG_AGO])
        ids = draw_content(self.topic[slots], self.quality[slots], bait, self.cfg.content,
                           text_rng)
        self.content_ids[slots] = ids
        self.content[slots] = content_model(self.cfg.content).columns(ids)

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
        traits = self.cfg.streamer_traits
        ramp = np.minimum(1.0, (self.minutes_live + traits.audience_ramp_start_minutes)
                          / traits.audience_ramp_minutes)
        popularity = np.exp(traits.popularity_attract * self.attract
                            + traits.popularity_quality * self.quality)
        self.viewers = np.where(self.live, self.organic * popularity * ramp + self.watchers, 0.0)
        self.viewers = self.viewers.astype(np.float32)

    def organic_traffic(self, rng: np.random.Generator) -> Engagement:
        """Draw one step of outside viewers' impressions, clicks and watch on live streams.

        Outside traffic is what makes the platform's estimates informative; a newcomer has
        none of it yet (cold start).
        """
        cfg, live = self.cfg, np.flatnonzero(self.live)
        shown = rng.poisson(cfg.organic_impressions * self.viewers[live] / cfg.organic_audience)
        p_click = sigmoid(self.attract[live] + cfg.match_weight * cfg.organic_match
                          - cfg.no_click_utility)
        clicks = rng.binomial(shown, p_click)
        gap = np.maximum(self.attract[live] - self.quality[live], 0.0)
        frac = watch_fraction(self.quality[live] + cfg.match_weight * cfg.organic_match
                              - cfg.disappointment * gap, cfg)
        return Engagement(live, shown, clicks, clicks * frac)

    def log(self, events: Engagement) -> None:
        """Add logged impressions, clicks and watch share to the platform's counters."""
        add_engagement(self.impressions, self.clicks, self.watch_sum, events)

    def minutes_left(self, ids: np.ndarray) -> np.ndarray:
        """Minutes until each stream in `ids` ends (0 when offline)."""
        return np.where(self.live[ids], self.duration[ids] - self.minutes_live[ids], 0)

    def record(self, tick: int) -> StreamerRecord:
        """What the platform knows of every streamer slot at `tick` (views, not copies)."""
        age = (tick - self.born_tick) * self.cfg.step_minutes
        return StreamerRecord(self.known_topic(), self.viewers, self.minutes_live,
                              self.impressions, self.clicks, self.watch_sum, age)

    def known_topic(self) -> np.ndarray:
        """The platform's view of each streamer's topic: the true one, or with
        `topic_evidence` k > 0 the true one scaled by clicks / (clicks + k) (learnt from
        engagement; a newcomer's is zero)."""
        k = self.cfg.topic_evidence
        if k == 0:
            return self.topic
        weight = (self.clicks / (self.clicks + k)).astype(np.float32)[:, None]
        if self.cfg.content.mode == "off":
            return self.topic * weight
        return self.topic * weight + (1.0 - weight) * self.content_topic(weight)

    def content_topic(self, weight: np.ndarray) -> np.ndarray:
        """Each streamer's topic as its text predicts it: a ridge regression from the
        content columns to the topic, fitted on the whole catalogue with each streamer
        weighted by how well the platform knows its topic (`weight`), so it is learnt
        from established streamers and read off for newcomers (the usual content-based
        cold-start mapping). Refitted at every call; it is a function of the state."""
        x = self.content
        xw = x * weight
        gram = xw.T @ x + CONTENT_RIDGE * np.eye(x.shape[1], dtype=np.float32)
        coef = np.linalg.solve(gram, xw.T @ self.topic)
        return (x @ coef).astype(np.float32)

    def feature_tables(self, tick: int) -> tuple[np.ndarray, np.ndarray]:
        """Topics `(n_streamers + 1, topic_dim)` and STREAMER_STATS `(n_streamers + 1, 6)`,
        followed by `content.dim` content columns when content is on.

        float32; the extra last row is all zeros and describes an empty candidate slot.
        """
        topics, stats = streamer_tables(self.record(tick),
                                        prior_strength=self.cfg.cold_start_prior)
        if self.cfg.content.n_columns() == 0:
            return topics, stats
        content = np.zeros((len(stats), self.cfg.content.dim), np.float32)
        content[:-1] = self.content
        return topics, np.concatenate([stats, content], axis=1)

    def text(self, slot: int) -> tuple[str, tuple[str, ...]]:
        """The title and tags of the streamer in `slot` (content mode text or topic)."""
        return render(self.content_ids[slot])

    def state(self) -> dict[str, np.ndarray]:
        return array_state(self)

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        load_array_state(self, state)
