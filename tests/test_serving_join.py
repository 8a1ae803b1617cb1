"""The reward join on hand-made decisions and events: rewards worked out by hand, sessions,
transitions, determinism, and the refusals (mixed slate sizes, unlogged decisions)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from liveq.core.config import ConfigError
from liveq.core.errors import LogError
from liveq.serving.join import JoinConfig, join_rows, load_join_config, save_join_config

HOURS = 3600.0


def decision(did, viewer, at, session, position=1, logged=True, k=1):
    probs = [0.25, 0.75] if position == 1 else [0.75, 0.25]
    return {"decision_id": did, "viewer_id": viewer, "created_at": at, "session_id": session,
            "k": k, "logged": logged, "log_probability": 1.0 if logged else 0.5,
            "exploration": {"kind": "epsilon", "epsilon": 0.5},
            "candidates": ["s0", "s1"], "slate_positions": [position],
            "probabilities": [probs] if logged else None,
            "features": {"viewer": [at, 1.0], "candidates": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]],
                         "mask": [1, 1]} if logged else None}


def event(eid, did, kind, at, value=None):
    return {"event_id": eid, "decision_id": did, "type": kind, "created_at": at,
            "value": value}


DECISIONS = [decision("d1", "A", 0.0, "sa"), decision("d2", "A", 60.0, "sa", position=0),
             decision("d3", "B", 30.0, "sb"), decision("d4", "A", 5 * HOURS, "sa2")]
EVENTS = [event(1, "d1", "click", 10.0), event(2, "d1", "click", 20.0),
          event(3, "d1", "watch", 30.0, 8.0), event(4, "d1", "gift", 660.0, 3.0),
          event(5, "d3", "gift", 40.0, 4.0), event(6, "d3", "follow", 50.0),
          event(7, "d3", "follow", 55.0), event(8, "d4", "comment", 5 * HOURS + 5),
          event(9, "d4", "session_end", 5 * HOURS + 6)]
CONFIG = dict(default_reward=-0.5, weights={"click": 1.0, "watch": 0.05, "gift": 0.5,
                                            "comment": 0.1, "follow": 0.3})


def test_rewards_sessions_and_transitions_by_hand():
    joined = join_rows(DECISIONS, EVENTS, JoinConfig(**CONFIG))
    s = joined.sessions
    # d1: one click (the second is ignored), 8 watch minutes; the gift came after 11 min
    # d2: nothing arrived (-0.5), last of its session, A is back 5 h later (+2)
    # d3: gift 4 x 0.5 + one follow 0.3; B never comes back
    # d4: a comment; its session_end closes it (kept although it is the log's last)
    assert joined.decision_ids == ["d1", "d2", "d3", "d4"]
    np.testing.assert_allclose(s.reward, [1.4, 1.5, 2.3, 0.1])
    assert s.session.tolist() == [0, 0, 1, 2] and s.step.tolist() == [0, 1, 0, 0]
    assert s.terminal.tolist() == [False, True, True, True]
    assert s.action.tolist() == [1, 0, 1, 1]
    np.testing.assert_allclose(s.behaviour[1], [0.75, 0.25])
    t = joined.transitions()
    np.testing.assert_array_equal(t["next_obs"]["viewer"][0], [60.0, 1.0])
    np.testing.assert_array_equal(t["next_obs"]["viewer"][1], t["obs"]["viewer"][1])
    assert t["terminated"].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert joined.stats["events_counted"] == 5  # click, watch, gift, follow, comment


def test_window_default_reward_and_once_are_configurable():
    config = JoinConfig(**{**CONFIG, "attribution_minutes": 12.0, "count_once": [],
                           "return_visit": 0.0})
    s = join_rows(DECISIONS, EVENTS, config).sessions
    # d1 now also counts the second click and the gift at 11 minutes: 2 + 0.4 + 1.5
    np.testing.assert_allclose(s.reward, [3.9, -0.5, 2.6, 0.1])


def test_open_sessions_are_dropped_or_kept():
    events = [e for e in EVENTS if e["type"] != "session_end"]
    assert join_rows(DECISIONS, events, JoinConfig(**CONFIG)).decision_ids == ["d1", "d2",
                                                                               "d3"]
    kept = join_rows(DECISIONS, events, JoinConfig(**CONFIG, drop_open_sessions=False))
    assert kept.decision_ids == ["d1", "d2", "d3", "d4"]


def test_gap_sessions_split_on_silence():
    joined = join_rows(DECISIONS, EVENTS, JoinConfig(**CONFIG, sessions="gap",
                                                     gap_minutes=0.5, return_visit=0.0))
    assert joined.sessions.session.tolist() == [0, 1, 2, 3]  # d1 and d2 are 60 s apart


def test_same_log_in_any_row_order_gives_identical_bits():
    first = join_rows(DECISIONS, EVENTS, JoinConfig(**CONFIG))
    rng = random.Random(3)
    for _ in range(3):
        decisions, events = DECISIONS[:], EVENTS[:]
        rng.shuffle(decisions)
        rng.shuffle(events)
        again = join_rows(decisions, events, JoinConfig(**CONFIG))
        assert again.decision_ids == first.decision_ids
        for a, b in zip(first.sessions, again.sessions, strict=True):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_a_log_mixing_slate_sizes_is_refused():
    with pytest.raises(LogError, match=r"mixes decisions of k = \[1, 2\]"):
        join_rows([decision("d1", "A", 0.0, "sa"), decision("d2", "B", 0.0, "sb", k=2)], [])


def test_a_single_item_log_has_no_slate_part():
    joined = join_rows(DECISIONS, EVENTS, JoinConfig(**CONFIG))
    assert joined.slate is None and "slate_size" not in joined.stats
    assert set(joined.transitions()["next_obs"]) == {"viewer", "candidates", "mask"}


def test_unlogged_decisions_refused_or_their_sessions_dropped():
    rows = DECISIONS[:3] + [decision("d5", "B", 40.0, "sb", logged=False)]
    with pytest.raises(LogError, match="logged without features"):
        join_rows(rows, EVENTS, JoinConfig(**CONFIG, drop_open_sessions=False))
    joined = join_rows(rows, EVENTS, JoinConfig(**CONFIG, unlogged="drop_sessions",
                                                drop_open_sessions=False))
    assert joined.decision_ids == ["d1", "d2"]
    assert joined.stats["unlogged_sessions_dropped"] == 1


def test_join_config_is_validated_and_round_trips(tmp_path):
    with pytest.raises(ConfigError, match="unknown event types"):
        JoinConfig(weights={"like": 1.0}).validate()
    with pytest.raises(ConfigError, match="sessions must be"):
        JoinConfig(sessions="days").validate()
    config = JoinConfig(**CONFIG, attribution_minutes=3.0)
    save_join_config(config, tmp_path / "join.yaml")
    assert load_join_config(tmp_path / "join.yaml") == config
