"""The feature builders: hand-checked numbers, and the simulator's observation rebuilt from
the events a platform logs (no simulator state but what a platform itself would hold)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liveq import features as F
from liveq.sim.livestream import LiveStreamVectorEnv, spaces_for
from liveq.sim.streamers import Streamers

# ------------------------------------------------------------------ hand-checked numbers


def test_viewer_features_by_hand():
    record = F.ViewerRecord(
        profile=np.array([[0.6, 0.8]], np.float32), recent=np.array([[0.0, 2.0]], np.float32),
        session_steps=np.array([20]), session_minutes=np.array([math.e ** 5 - 1], np.float32),
        last_click=np.array([1.0]), last_watch=np.array([0.25]), n_follows=np.array([9]),
        days_active=np.array([0]), watching_live=np.array([True]))
    out = F.viewer_features(record, clock=1440 * 3 + 360, max_session_steps=80, max_follows=6)
    assert out.dtype == np.float32 and out.shape == (1, F.viewer_width(2)) == (1, 14)
    expected = [0.6, 0.8, 0.0, 2.0, 1.0, 0.0, 0.25, 1.0, 1.0, 0.25, 1.0, 1.0, 0.0, 1.0]
    np.testing.assert_allclose(out[0], expected, atol=1e-6)  # 06:00: sin 1, cos 0
    older = record._replace(days_active=np.array([math.e ** 3 - 1]))
    days = F.viewer_features(older, 0, max_session_steps=80, max_follows=6)[0]
    assert days[F.viewer_column_names(2).index("is_new")] == 0.0
    assert days[F.viewer_column_names(2).index("days")] == pytest.approx(1.0)


def test_streamer_stats_shrink_toward_the_prior_by_hand():
    record = F.StreamerRecord(
        topic=np.zeros((2, 3), np.float32), viewers=np.array([math.e ** 8 - 1, 0], np.float32),
        minutes_live=np.array([150, 0]), impressions=np.array([10.0, 0.0]),
        clicks=np.array([4.0, 0.0]), watch_sum=np.array([2.0, 0.0]),
        age_minutes=np.array([1439.0, 1440.0]))
    stats = F.streamer_stats(record, prior_strength=20.0)
    # est_ctr = (4 + 20 * 0.3) / (10 + 20); est_watch = (2 + 20 * 0.5) / (4 + 20)
    np.testing.assert_allclose(stats[0], [1.0, 10 / 30, 12 / 24, math.log(11) / 10, 0.5, 1.0],
                               rtol=1e-6)
    np.testing.assert_allclose(stats[1], [0.0, 0.3, 0.5, 0.0, 0.0, 0.0])
    topics, table = F.streamer_tables(record, prior_strength=20.0)
    assert topics.shape == (3, 3) and table.shape == (3, len(F.STREAMER_STATS))
    assert not table[-1].any() and not topics[-1].any()  # the empty-slot row


def test_history_keeps_the_most_watched_and_follows_drop_the_oldest():
    hist_ids = np.array([[5, 6, -1]], np.int32)
    hist_minutes = np.array([[30.0, 10.0, 0.0]], np.float32)
    rows = np.array([0])
    F.add_history(hist_ids, hist_minutes, rows, np.array([6]), np.array([5.0], np.float32))
    F.add_history(hist_ids, hist_minutes, rows, np.array([7]), np.array([1.0], np.float32))
    F.add_history(hist_ids, hist_minutes, rows, np.array([8]), np.array([2.0], np.float32))
    assert hist_ids.tolist() == [[5, 6, 8]] and hist_minutes.tolist() == [[30, 15, 2]]
    follows = np.array([[-1, 3, 4]], np.int32)
    F.add_follow(follows, rows, np.array([4]))
    assert follows.tolist() == [[-1, 3, 4]]  # already followed
    F.add_follow(follows, rows, np.array([9]))
    F.add_follow(follows, rows, np.array([2]))
    assert follows.tolist() == [[4, 9, 2]]


def test_pair_and_candidate_features_by_hand():
    ids = np.array([[4, 9, -1]])
    pair = F.pair_features(ids, follows=np.array([[9, -1]]), watching=np.array([4]),
                           hist_ids=np.array([[4, 7]]),
                           hist_minutes=np.array([[math.e ** 5 - 1, 3.0]], np.float32))
    np.testing.assert_allclose(pair[0], [[0, 1, 1], [1, 0, 0], [0, 0, 0]], atol=1e-6)
    topics = np.array([[[1, 0], [0, 1], [0, 0]]], np.float32)
    stats = np.full((1, 3, len(F.STREAMER_STATS)), 0.5, np.float32)
    viewer = np.array([[0.5, 0.25, 2.0, 3.0, 9.0]], np.float32)  # profile, recent, a scalar
    cands = F.candidate_features(topics, stats, viewer, pair)
    assert cands.shape == (1, 3, len(F.CANDIDATE_FEATURES))
    np.testing.assert_allclose(cands[0, :, :2], [[0.5, 2.0], [0.25, 3.0], [0.0, 0.0]])


def test_schema_names_every_observation_column_in_order():
    cfg = LiveStreamVectorEnv(1, n_streamers=40).config
    obs_space, _ = spaces_for(cfg)
    assert obs_space["viewer"].shape == (len(F.viewer_column_names(cfg.topic_dim)),)
    assert obs_space["candidates"].shape[1] == len(F.CANDIDATE_SCHEMA)
    assert F.CANDIDATE_FEATURES == ("match", "recent_overlap", *F.PAIR_FEATURES,
                                    *F.STREAMER_STATS)
    for feature in (*F.TOPIC_BLOCKS, *F.VIEWER_SCHEMA, *F.CANDIDATE_SCHEMA):
        assert feature.name and feature.meaning and feature.scale


# ------------------------------------------------------------------ both ways from one log


class PlatformLog:
    """A service's own view of the platform, kept from logged events and feeds only.

    Viewer side: the profile database at the start, then each step's events (what was
    shown, opened, watched, followed; which sessions ended and whether the viewer comes
    back). Streamer side: the catalogue feed (topic, first-seen step, live state,
    audience) and the impressions, clicks and watch share logged from outside traffic.
    """

    def __init__(self, env: LiveStreamVectorEnv, organic: list[F.Engagement]):
        cfg, core = env.config, env.core
        self.cfg, self.organic = cfg, organic
        v = core.viewers  # the platform's profile database at the start
        self.profile, self.follows = v.profile.copy(), v.follows.copy()
        self.hist_ids, self.hist_minutes = v.hist_ids.copy(), v.hist_minutes.copy()
        self.days = v.days.copy()
        n, d = v.profile.shape
        self.recent = np.zeros((n, d), np.float32)
        self.step, self.minutes = np.zeros(n, np.int64), np.zeros(n, np.float32)
        self.last_click, self.last_watch = np.zeros(n, np.float32), np.zeros(n, np.float32)
        self.current = np.full(n, -1, np.int32)
        self.ended, self.returning = np.zeros(n, bool), np.zeros(n, bool)
        m = cfg.n_streamers
        self.impressions, self.clicks, self.watch_sum = np.zeros(m), np.zeros(m), np.zeros(m)
        self.tick, self.born = 0, None
        self.read_catalogue(core)

    def read_catalogue(self, core) -> None:
        """The streamer feed: new accounts start with empty counters; then outside traffic."""
        s = core.streamers
        if self.born is not None:
            for counter in (self.impressions, self.clicks, self.watch_sum):
                counter[s.born_tick != self.born] = 0.0
        self.born, self.topic = s.born_tick.copy(), s.topic.copy()
        self.viewers, self.minutes_live = s.viewers.copy(), s.minutes_live.copy()
        self.live = s.live.copy()
        for events in self.organic:
            F.add_engagement(self.impressions, self.clicks, self.watch_sum, events)
        self.organic.clear()

    def add_step(self, info: dict, core) -> None:
        cfg, active = self.cfg, ~self.ended
        clicked, share = info["clicked_id"], info["watch_share"]
        rows = np.flatnonzero(clicked >= 0)
        weight = share[rows, None].astype(np.float32)
        F.record_watches(self.profile, self.recent, rows, self.topic[clicked[rows]], weight,
                         exposure_decay=cfg.fatigue_decay, profile_rate=cfg.profile_rate)
        F.add_history(self.hist_ids, self.hist_minutes, rows, clicked[rows],
                      info["watch_minutes"][rows].astype(np.float32))
        fans = np.flatnonzero(info["follow_id"] >= 0)
        F.add_follow(self.follows, fans, info["follow_id"][fans])
        self.current = np.where(clicked >= 0, clicked, np.where(active, -1, self.current))
        self.step += active
        self.minutes += info["watch_minutes"].astype(np.float32)
        self.last_click = np.where(active, clicked >= 0, self.last_click).astype(np.float32)
        self.last_watch = np.where(active, share, self.last_watch).astype(np.float32)
        F.add_engagement(self.impressions, self.clicks, self.watch_sum, F.count_engagement(
            cfg.n_streamers, info["shown_ids"], clicked, share))
        self._start_sessions(np.flatnonzero(self.ended))
        self.ended, self.returning = info["session_end"], info["will_return"]
        self.tick += 1
        self.read_catalogue(core)

    def _start_sessions(self, rows: np.ndarray) -> None:
        back = self.returning[rows]
        self.days[rows[back]] += 1
        new = rows[~back]
        self.profile[new], self.follows[new], self.days[new] = 0.0, -1, 0
        self.hist_ids[new], self.hist_minutes[new] = -1, 0.0
        for field in (self.recent, self.step, self.minutes, self.last_click, self.last_watch):
            field[rows] = 0
        self.current[rows] = -1

    def observation(self, clock: int, cand_ids: np.ndarray) -> dict[str, np.ndarray]:
        cfg = self.cfg
        watching_live = (self.current >= 0) & self.live[np.maximum(self.current, 0)]
        viewer = F.viewer_features(F.ViewerRecord(
            self.profile, self.recent, self.step, self.minutes, self.last_click,
            self.last_watch, (self.follows >= 0).sum(axis=1), self.days, watching_live),
            clock, max_session_steps=cfg.max_session_steps, max_follows=cfg.max_follows)
        age = (self.tick - self.born) * cfg.step_minutes
        topics, stats = F.streamer_tables(F.StreamerRecord(
            self.topic, self.viewers, self.minutes_live, self.impressions, self.clicks,
            self.watch_sum, age), prior_strength=cfg.cold_start_prior)
        rows = np.where(cand_ids >= 0, cand_ids, cfg.n_streamers)
        pair = F.pair_features(cand_ids, self.follows, self.current, self.hist_ids,
                               self.hist_minutes)
        cands = F.candidate_features(topics[rows], stats[rows], viewer, pair)
        return {"viewer": viewer, "candidates": cands}


def test_a_service_rebuilds_the_observation_from_logged_events(monkeypatch):
    organic: list[F.Engagement] = []
    draw = Streamers.organic_traffic

    def logged_traffic(self, rng):
        events = draw(self, rng)
        organic.append(F.Engagement(*(np.copy(a) for a in events)))
        return events

    monkeypatch.setattr(Streamers, "organic_traffic", logged_traffic)
    env = LiveStreamVectorEnv(24, n_streamers=80, n_candidates=8, followed_slots=2,
                              trending_slots=2, new_streamer_rate=0.02, follow_prob=0.6)
    obs, _ = env.reset(seed=7)
    log = PlatformLog(env, organic)
    rng = np.random.default_rng(0)
    seen = {"follows": 0, "returns": 0, "new_streamers": 0}
    for _ in range(200):  # over a day of platform time
        built = log.observation(env.core.clock, env.core.cand_ids)
        for key in built:
            np.testing.assert_array_equal(built[key], obs[key], err_msg=key)
        scores = np.where(obs["mask"] == 1, rng.random(obs["mask"].shape), -1.0)
        born = log.born
        obs, _, _, _, info = env.step(np.argmax(scores, axis=1))
        log.add_step(info, env.core)
        seen["follows"] += int((info["follow_id"] >= 0).sum())
        seen["returns"] += int(info["will_return"].sum())
        seen["new_streamers"] += int((log.born != born).sum())
    assert min(seen.values()) > 0, seen  # every kind of event was exercised
