"""The reward join of slates (k > 1) on hand-made decisions and events: the shown lists,
the opened rank by the event's streamer, rewards, empty ranks, the replay a slate learner
reads, determinism, the refusals; and `liveq learn`'s choice of learners for slates."""

from __future__ import annotations

import random

import numpy as np
import pytest
from gymnasium import spaces

from liveq.buffers.clicks import CLICK_FIELD
from liveq.core.config import ConfigError
from liveq.core.errors import LogError
from liveq.serving.join import JoinConfig, join_rows
from liveq.serving.learn import check_slate_learner, fill_buffer, slate_learners

IDS = ["s0", "s1", "s2", "s3"]


def decision(did, viewer, at, session, positions, mask=(1, 1, 1, 1)):
    """A k = 2 decision showing the candidate rows `positions` (fewer when fewer allowed)."""
    uniform = [m / sum(mask) if sum(mask) else 0.0 for m in mask]
    return {"decision_id": did, "viewer_id": viewer, "created_at": at, "session_id": session,
            "k": 2, "logged": True, "log_probability": 1.0,
            "exploration": {"kind": "epsilon", "epsilon": 1.0},
            "candidates": IDS, "slate_positions": positions,
            "slate": [IDS[p] for p in positions],
            "slate_probability": 1.0 / 12 if len(positions) == 2 else 1.0,
            "probabilities": [uniform, uniform][:max(1, len(positions))],
            "features": {"viewer": [at, 1.0],
                         "candidates": [[float(i), 1.0, 2.0] for i in range(4)],
                         "mask": list(mask)}}


def event(eid, did, kind, at, streamer=None, value=None):
    return {"event_id": eid, "decision_id": did, "type": kind, "created_at": at,
            "value": value, "streamer_id": streamer}


DECISIONS = [decision("d1", "A", 0.0, "sa", [2, 0]), decision("d2", "A", 60.0, "sa", [1, 3]),
             decision("d3", "B", 30.0, "sb", [3, 2]), decision("d4", "C", 0.0, "sc", [1],
                                                               mask=(0, 1, 0, 0)),
             decision("d5", "C", 60.0, "sc", [], mask=(0, 0, 0, 0))]
EVENTS = [event(1, "d1", "impression", 1.0, "s2"), event(2, "d1", "impression", 1.0, "s0"),
          event(3, "d1", "click", 10.0, "s0"), event(4, "d1", "watch", 20.0, "s0", 8.0),
          event(5, "d1", "click", 30.0, "s2"),  # a second click: counted once, rank kept
          event(6, "d2", "click", 700.0, "s3"),  # after the 10-minute window
          event(7, "d3", "click", 40.0),  # no streamer: the top item
          event(8, "d3", "session_end", 50.0), event(9, "d2", "session_end", 61.0),
          event(10, "d4", "click", 5.0, "s1"), event(11, "d5", "session_end", 61.0)]


def test_opened_ranks_rewards_and_lists_by_hand():
    joined = join_rows(DECISIONS, EVENTS, JoinConfig(return_visit=0.0))
    assert joined.decision_ids == ["d1", "d2", "d4", "d5", "d3"]
    slate = joined.slate
    assert joined.stats["slate_size"] == 2
    assert slate.slates.tolist() == [[2, 0], [1, 3], [1, -1], [-1, -1], [3, 2]]
    assert slate.clicked_rank.tolist() == [1, -1, 0, -1, 0]
    np.testing.assert_allclose(slate.probability, [1 / 12, 1 / 12, 1.0, 1.0, 1 / 12])
    # d1: one click (whichever item) + 8 watch minutes; d2: its click came too late
    np.testing.assert_allclose(joined.sessions.reward, [1.4, 0.0, 1.0, 0.0, 1.0])
    # the Sessions view keeps the top item and rank 0's distribution
    assert joined.sessions.action.tolist() == [2, 1, 1, 0, 3]
    np.testing.assert_allclose(joined.sessions.behaviour[2], [0.0, 1.0, 0.0, 0.0])


def test_transitions_hold_the_full_list_and_the_opened_rank():
    joined = join_rows(DECISIONS, EVENTS, JoinConfig())
    t = joined.transitions()
    # empty ranks hold the first rows neither shown nor allowed (top_k_slate's fill)
    assert t["action"].tolist() == [[2, 0], [1, 3], [1, 0], [0, 1], [3, 2]]
    assert t["next_obs"][CLICK_FIELD].tolist() == [1, -1, 0, -1, 0]
    assert t["obs"][CLICK_FIELD].tolist() == [-1] * 5
    np.testing.assert_array_equal(t["next_obs"]["viewer"][0], [60.0, 1.0])


def test_same_log_in_any_row_order_gives_identical_bits():
    first = join_rows(DECISIONS, EVENTS, JoinConfig())
    rng = random.Random(3)
    decisions, events = DECISIONS[:], EVENTS[:]
    rng.shuffle(decisions)
    rng.shuffle(events)
    again = join_rows(decisions, events, JoinConfig())
    for a, b in zip(first.slate, again.slate, strict=True):
        assert a.tobytes() == b.tobytes()
    for a, b in zip(first.sessions, again.sessions, strict=True):
        assert a.tobytes() == b.tobytes()


def test_an_event_about_an_item_not_shown_is_refused_by_name():
    bad = EVENTS + [event(12, "d2", "watch", 70.0, "s0", 3.0)]
    with pytest.raises(LogError, match="names streamer 's0', which that decision did not show"):
        join_rows(DECISIONS, bad, JoinConfig())


def test_learners_for_slates_and_the_replay_they_read():
    assert slate_learners() == ["slateq"]
    joined = join_rows(DECISIONS, EVENTS, JoinConfig())
    with pytest.raises(ConfigError, match=r"'cql' cannot learn .* choose one of \['slateq'\]"):
        check_slate_learner("cql", joined)
    check_slate_learner("slateq", joined)
    single = joined._replace(slate=None)
    with pytest.raises(ConfigError, match="k = 1"):
        check_slate_learner("slateq", single)
    space = spaces.Dict({"viewer": spaces.Box(-1e3, 1e3, (2,), np.float32),
                         "candidates": spaces.Box(-1e3, 1e3, (4, 3), np.float32),
                         "mask": spaces.MultiBinary(4)})
    buffer = fill_buffer(joined, space)
    batch = buffer.batch(np.arange(5))
    assert batch.actions.tolist() == [[2, 0], [1, 3], [1, 0], [0, 1], [3, 2]]
    assert batch.next_obs[CLICK_FIELD].tolist() == [1, -1, 0, -1, 0]
