"""Decisions logged in bulk (`decision_log.log_decisions`) leave the log exactly as the
same decisions logged one by one: the same session ids and steps, the same viewer states,
also when a viewer has several decisions in the batch, and when a new viewer's row was
made by someone else in between (the fallback to one write each)."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from liveq.serving import store, viewers
from liveq.serving.db import open_log
from liveq.serving.decision_log import log_decision, log_decisions
from liveq.serving.settings import FeatureSettings
from liveq.serving.tables import decisions
from liveq.serving.tables import viewers as viewer_table

SETTINGS = FeatureSettings(topic_dim=3, max_follows=2)
GAP = 30.0
T = 1_000_000.0


def _row(decision_id: str, viewer_id: str, at: float) -> dict:
    return {"decision_id": decision_id, "viewer_id": viewer_id, "created_at": at,
            "request_time": at, "context": {}, "session_id": "", "session_step": 0,
            "model_version": "m", "arm": "live", "exploration": {"kind": "epsilon"},
            "k": 1, "candidates": ["b0"], "logged": False, "log_probability": 0.0,
            "slate": ["b0"], "slate_positions": [0], "slate_probability": 1.0,
            "item_probabilities": [1.0]}


def _items() -> list:
    plan = [("a", T), ("new1", T + 1), ("a", T + 5), ("b", T + 6), ("new1", T + 7),
            ("new2", T + 8), ("b", T + 3 * 3600)]  # b's last opens a new session
    return [(viewer, _row(f"d{i}", viewer, at), SETTINGS)
            for i, (viewer, at) in enumerate(plan)]


def _log(tmp_path, name: str, monkeypatch, write) -> tuple[list, list]:
    """A log holding viewers a (in a session) and b (silent for an hour), then `write`'s
    decisions; its decisions' sessions and its viewers' rows."""
    counter = itertools.count()
    monkeypatch.setattr(viewers.uuid, "uuid4", lambda: type(
        "U", (), {"hex": f"{next(counter):032x}"})())
    engine = open_log(f"sqlite:///{tmp_path / name}")
    with engine.begin() as conn:
        for viewer_id, last in (("a", T - 60.0), ("b", T - 3600.0)):
            state = viewers.ViewerState.new(SETTINGS)
            viewers.start_session_if_due(state, last, GAP)
            viewers.begin_step(state, SETTINGS, last)
            store.save_viewer(conn, viewer_id, state.to_json(), last)
    with engine.begin() as conn:
        out = write(conn, _items())
    with engine.connect() as conn:
        logged = [tuple(r) for r in conn.execute(select(
            decisions.c.decision_id, decisions.c.session_id, decisions.c.session_step)
            .order_by(decisions.c.decision_id))]
        states = [tuple(r) for r in conn.execute(select(viewer_table)
                                                 .order_by(viewer_table.c.viewer_id))]
    engine.dispose()
    assert out == [None] * len(_items())
    return logged, states


def _one_by_one(conn, items):
    return [log_decision(conn, item, GAP) for item in items]


def test_bulk_logging_leaves_what_one_write_each_leaves(tmp_path, monkeypatch):
    bulk = _log(tmp_path, "bulk.db", monkeypatch, lambda c, i: log_decisions(c, i, GAP))
    single = _log(tmp_path, "single.db", monkeypatch, _one_by_one)
    assert bulk == single
    logged, states = bulk
    assert [step for _, _, step in logged] == [1, 0, 2, 0, 1, 0, 0]
    assert len(states) == 4


def test_a_new_viewer_made_meanwhile_falls_back_to_one_write_each(tmp_path, monkeypatch):
    """The bulk read misses viewer a (as if another worker created it after the read):
    the insert finds it taken, and each decision is logged by its own write."""
    single = _log(tmp_path, "single.db", monkeypatch, _one_by_one)
    real = store.viewer_states
    monkeypatch.setattr(store, "viewer_states", lambda conn, ids: {
        k: v for k, v in real(conn, ids).items() if k != "a"})
    fallback = _log(tmp_path, "fallback.db", monkeypatch,
                    lambda c, i: log_decisions(c, i, GAP))
    assert _renamed(fallback) == _renamed(single)


def _renamed(log: tuple[list, list]) -> str:
    """The log with session ids named by first appearance (the bulk attempt that was
    rolled back drew ids of its own first)."""
    text = repr(log)
    for i, sid in enumerate(dict.fromkeys(sid for _, sid, _ in log[0])):
        text = text.replace(sid, f"session{i}")
    return text


@pytest.mark.parametrize("broken", [False, True])
def test_the_fallback_hands_each_write_its_own_failure(tmp_path, monkeypatch, broken):
    engine = open_log(f"sqlite:///{tmp_path / 'log.db'}")
    monkeypatch.setattr(store, "viewer_states", lambda conn, ids: {})
    with engine.begin() as conn:
        store.save_viewer(conn, "a", viewers.ViewerState.new(SETTINGS).to_json(), T)
    items = _items()[:2]
    if broken:
        items[1][1]["k"] = None  # NOT NULL: this write alone fails
    with engine.begin() as conn:
        out = log_decisions(conn, items, GAP)
    engine.dispose()
    assert out[0] is None
    assert (out[1] is not None) == broken and (not broken or isinstance(out[1], Exception))
