"""`topic_evidence`: the platform learns a streamer's topic from clicks; viewers do not change."""

from __future__ import annotations

import numpy as np
import pytest

from liveq.core.config import ConfigError
from liveq.sim.livestream import LiveStreamVectorEnv

SMALL = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2,
         "new_streamer_rate": 0.005}


def play(kwargs: dict, steps: int = 60) -> tuple[list[np.ndarray], LiveStreamVectorEnv]:
    """Rewards of a fixed action sequence (always the first candidate)."""
    env = LiveStreamVectorEnv(8, config={**SMALL, **kwargs})
    env.reset(seed=3)
    rewards = [env.step(np.zeros(8, dtype=np.int64))[1] for _ in range(steps)]
    return rewards, env


def test_known_topic_is_the_true_topic_scaled_by_clicks():
    _, env = play({"topic_evidence": 10.0}, steps=1)
    s = env.core.streamers
    s.clicks[:3] = [0.0, 10.0, 30.0]
    known = s.known_topic()
    np.testing.assert_allclose(known[0], 0.0)
    np.testing.assert_allclose(known[1], 0.5 * s.topic[1], rtol=1e-6)
    np.testing.assert_allclose(known[2], 0.75 * s.topic[2], rtol=1e-6)
    assert s.record(env.core.tick).topic is not s.topic


def test_default_world_shows_the_true_topic():
    _, env = play({}, steps=1)
    s = env.core.streamers
    assert s.record(env.core.tick).topic is s.topic


def test_only_the_platforms_view_changes_not_the_viewers():
    """Same seed, same actions: the same rewards, while the observed topic features differ
    (a newcomer's topic match is zero until it is clicked)."""
    known, env_known = play({})
    learnt, env_learnt = play({"topic_evidence": 30.0})
    for a, b in zip(known, learnt, strict=True):
        np.testing.assert_array_equal(a, b)
    topics_known = env_known.core.streamers.record(env_known.core.tick).topic
    topics_learnt = env_learnt.core.streamers.record(env_learnt.core.tick).topic
    assert np.linalg.norm(topics_learnt, axis=1).max() < 1.0
    assert not np.allclose(topics_known, topics_learnt)


def test_negative_topic_evidence_is_refused():
    with pytest.raises(ConfigError, match="topic_evidence must be >= 0"):
        LiveStreamVectorEnv(1, config={**SMALL, "topic_evidence": -1.0})
