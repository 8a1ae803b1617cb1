"""Decisions logged in bulk: the decisions one group commit holds, written with a handful
of statements.

Logging a decision alone took a savepoint and three statements (read and lock the
viewer's state, insert the decision, save the state), each a SQLAlchemy round of tens of
microseconds of Python: about half of the writer thread's time per recommendation. The
group commit hands the decisions queued together (those without a request key; a keyed
one keeps its own write, which must look its key up first) to `log_decisions`, which
reads and locks their viewers' states with one `IN` query, advances each state decision
by decision in queue order (a viewer with two decisions in the batch has the second
advanced from the first, exactly as two writes one after the other did), and writes the
decisions, the states and the new viewers with one multi-row statement each.

Every write in a batch was in flight at once (none was answered before the commit), so
applying them in any order is a valid order; this keeps their queue order among
themselves. On PostgreSQL a new viewer can be created by another worker between the
read and the insert: the bulk write is then rolled back and each decision is logged by
its own write (`log_decision`, the write of a keyed decision), which re-reads the row the
other worker made; so is every decision of a batch whose bulk write failed for any other
reason, so one bad row fails only its own request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from liveq.serving import store
from liveq.serving.settings import FeatureSettings
from liveq.serving.viewers import ViewerState, begin_step, start_session_if_due

Item = tuple[str, dict[str, Any], FeatureSettings]
"""A decision to log: viewer id, the decision's row (its session is filled in here) and
the settings of the model that made it."""


class _NewViewerTaken(Exception):
    """Another transaction created a viewer this batch meant to create."""


def log_decisions(conn: Connection, items: list[Item], gap_minutes: float) -> list[Any]:
    """Log `items` (decisions without a request key) in `conn`'s transaction; one result
    per item: None (logged) or the exception its own write raised."""
    try:
        with conn.begin_nested():
            _bulk(conn, items, gap_minutes)
        return [None] * len(items)
    except Exception:  # noqa: BLE001  (a taken viewer, or one bad row: each alone below)
        out = []
        for item in items:
            try:
                with conn.begin_nested():
                    out.append(log_decision(conn, item, gap_minutes))
            except Exception as exc:  # noqa: BLE001  (handed to that item's request)
                out.append(exc)
        return out


def log_decision(conn: Connection, item: Item, gap_minutes: float) -> dict[str, Any] | None:
    """Log one decision and advance its viewer's step. The state is re-read under the lock
    so concurrent feedback is not overwritten. Returns the first decision of the row's
    request key when another request logged it first (then nothing is written), else
    None."""
    viewer_id, row, settings = item
    key, at = row.get("request_key"), row["created_at"]
    fresh = ViewerState.new(settings).to_json()
    state = ViewerState.from_json(store.lock_viewer(conn, viewer_id, at, fresh), settings)
    first = None if key is None else store.decision_by_key(conn, key)
    if first is not None:
        return first
    start_session_if_due(state, at, gap_minutes)
    row["session_id"], row["session_step"] = state.session_id, state.session_steps
    begin_step(state, settings, at)
    if not store.insert_decision(conn, row):
        return store.decision_by_key(conn, key)
    store.save_viewer(conn, viewer_id, state.to_json(), at)
    return None


def _bulk(conn: Connection, items: list[Item], gap_minutes: float) -> None:
    stored = store.viewer_states(conn, sorted({viewer for viewer, _, _ in items}))
    states: dict[str, tuple[dict[str, Any], float]] = {}  # newest state, when
    for viewer_id, row, settings in items:
        at = row["created_at"]
        before = states[viewer_id][0] if viewer_id in states else stored.get(viewer_id)
        state = (ViewerState.new(settings) if before is None
                 else ViewerState.from_json(before, settings))
        start_session_if_due(state, at, gap_minutes)
        row["session_id"], row["session_step"] = state.session_id, state.session_steps
        begin_step(state, settings, at)
        states[viewer_id] = (state.to_json(), at)
    store.insert_decisions(conn, [row for _, row, _ in items])
    store.save_viewers(conn, [(v, s, at) for v, (s, at) in states.items() if v in stored])
    new = [(v, s, at) for v, (s, at) in states.items() if v not in stored]
    if store.insert_new_viewers(conn, new) != len(new):
        raise _NewViewerTaken
