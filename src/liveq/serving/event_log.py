"""Feedback events logged in bulk: one transaction's events with a handful of statements.

Per event the plain path asked four questions of the database (is the key known, the
decision, the insert, the streamer's counter), each a SQLAlchemy round of a few hundred
microseconds of Python; for a batch `log_events` asks each question once for all of
them: the known keys and the decisions with one `IN` query each, the new events with one
multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING`, the impressions with one
`UPDATE` per streamer. The answers are those the events would get one by one, in order:
a key seen before (in the log or earlier in the batch) gets its first answer (409 when
it named another event), an unknown decision a 404, a bad streamer or value a 422, and a
refused event writes nothing. Events that change the viewer's state (click, watch,
follow, session end) are applied one by one, in order, by `apply`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from liveq.core.errors import RequestError
from liveq.serving import store
from liveq.serving.schemas import Feedback

FEEDBACK_COLUMNS = ("decision_id", "viewer_id", "arm", "model_version", "slate")
"""What an event needs of its decision (not the logged features and distributions)."""

Outcome = tuple[dict[str, Any], str | None] | RequestError
"""An accepted event's answer (with its `value`) and its decision's arm (None for a
repeated key), or the error a refused event gets."""


def log_events(conn: Connection, bodies: list[Feedback], at: float | list[float],
               apply: Callable[..., None]) -> list[Outcome]:
    """Log `bodies` in `conn`'s transaction; one outcome per event, in order. `at` is
    when they arrived: one time for all, or one per event (single events that group
    commit merged)."""
    times = at if isinstance(at, list) else [at] * len(bodies)
    known = store.events_by_keys(conn, [b.idempotency_key for b in bodies])
    decisions = store.decisions_by_ids(conn, sorted({b.decision_id for b in bodies}),
                                       FEEDBACK_COLUMNS)
    out: list[Any] = [None] * len(bodies)
    first: dict[str, tuple[int, dict]] = {}  # key -> the event (and row) that logs it
    later: dict[int, int] = {}  # a repeat of a key first sent earlier in this batch
    rows, plan = [], []
    for i, body in enumerate(bodies):
        key = body.idempotency_key
        try:
            if key in known:
                out[i] = (repeat(known[key], body), None)
            elif key in first:
                repeat({**first[key][1], "event_id": None}, body)  # a 409 if another event
                later[i] = first[key][0]
            else:
                rows.append(_row(body, decisions, times[i]))
                first[key] = (i, rows[-1])
                plan.append(i)
        except RequestError as exc:
            out[i] = exc
    ids = store.insert_events(conn, rows)
    impressions: Counter = Counter()
    for i, row in zip(plan, rows, strict=True):
        body, decision = bodies[i], decisions[bodies[i].decision_id]
        if row["idempotency_key"] not in ids:  # a concurrent request took the key
            try:
                out[i] = (repeat(store.event_by_key(conn, row["idempotency_key"]), body),
                          None)
            except RequestError as exc:
                out[i] = exc
            continue
        if body.type == "impression":
            impressions[row["streamer_id"]] += 1.0
        else:
            apply(conn, decision, body, row["streamer_id"], times[i])
        out[i] = ({**row["response"], "event_id": ids[row["idempotency_key"]],
                   "value": row["value"]}, decision["arm"])
    store.add_impressions(conn, impressions)
    for i, j in later.items():
        out[i] = out[j] if isinstance(out[j], RequestError) else (
            {k: v for k, v in out[j][0].items() if k != "value"}, None)
    return out


def _row(body: Feedback, decisions: dict[str, dict], at: float) -> dict[str, Any]:
    decision = decisions.get(body.decision_id)
    if decision is None:
        raise RequestError(404, f"unknown decision_id '{body.decision_id}'")
    response = {"decision_id": body.decision_id, "type": body.type, "accepted": True}
    return {"idempotency_key": body.idempotency_key, "decision_id": body.decision_id,
            "viewer_id": decision["viewer_id"], "streamer_id": event_streamer(body, decision),
            "type": body.type, "value": event_value(body), "created_at": at,
            "response": response}


def repeat(done: dict[str, Any], body: Feedback) -> dict[str, Any]:
    """The first answer to a key sent again; a 409 when it named another event."""
    if done["decision_id"] != body.decision_id or done["type"] != body.type:
        raise RequestError(409, f"idempotency_key '{body.idempotency_key}' was used for "
                                f"another event ({done['type']} of decision "
                                f"{done['decision_id']})")
    return {**done["response"], "event_id": done["event_id"]}


def event_value(body: Feedback) -> float | None:
    if body.type == "watch":
        if body.minutes is None:
            raise RequestError(422, "minutes: a watch event needs minutes (> 0)")
        return body.minutes
    if body.type == "gift":
        if body.value is None:
            raise RequestError(422, "value: a gift event needs a value (>= 0)")
        return body.value
    return None


def event_streamer(body: Feedback, decision: dict[str, Any]) -> str | None:
    if body.type == "session_end":
        return None
    if body.streamer_id is None:
        if not decision["slate"]:
            raise RequestError(422, f"decision {body.decision_id} showed nothing")
        return decision["slate"][0]
    if body.streamer_id not in decision["slate"]:
        raise RequestError(422, f"streamer_id '{body.streamer_id}' was not shown in "
                                f"decision {body.decision_id}")
    return body.streamer_id
