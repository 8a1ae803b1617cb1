"""Reading and writing the decision log: the functions the service, and later the reward
join, `liveq learn`, the promotion gate and the traffic driver, use.

Every function takes a SQLAlchemy `Connection` inside a transaction (`engine.begin()`),
so a caller groups several of them into one atomic commit.

The statements the recommend and feedback paths run are built once, with bound
parameters (`_VIEWER_STATE`, `_SAVE_VIEWER`, ...): a statement built per call costs
SQLAlchemy its construction and cache key, about 50 us of a 30 us query.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import Connection, Float, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from liveq.core.errors import RequestError
from liveq.serving.observe import Catalogue
from liveq.serving.tables import decisions, events, models, splits, streamers, viewers

MODEL_STATUSES = ("live", "candidate", "retired")


def now() -> float:
    return time.time()


def live_catalogue(conn: Connection, at: float) -> Catalogue:
    """The streamers live now, with minutes live and age as of `at`."""
    rows = conn.execute(select(streamers).where(streamers.c.live.is_(True))
                        .order_by(streamers.c.streamer_id)).mappings().all()
    topic = np.asarray([r["topic"] for r in rows], np.float32)
    if not rows:
        topic = np.zeros((0, 0), np.float32)  # the service sets the model's width
    column = lambda name: np.asarray([r[name] for r in rows], np.float64)  # noqa: E731
    return Catalogue(
        [r["streamer_id"] for r in rows], topic,
        column("viewers").astype(np.float32),
        np.maximum(at - column("live_since"), 0.0) // 60,
        column("impressions"), column("clicks"), column("watch_sum"),
        np.maximum(at - column("first_seen"), 0.0) / 60)


def streamer_topics(conn: Connection, ids: list[str]) -> dict[str, list[float]]:
    rows = conn.execute(select(streamers.c.streamer_id, streamers.c.topic)
                        .where(streamers.c.streamer_id.in_(ids)))
    return {r.streamer_id: r.topic for r in rows}


def upsert_streamer(conn: Connection, values: dict[str, Any]) -> None:
    """Insert or replace one streamer's row (`values` holds every column)."""
    exists = conn.execute(select(streamers.c.streamer_id).where(
        streamers.c.streamer_id == values["streamer_id"])).first()
    if exists:
        conn.execute(update(streamers).where(streamers.c.streamer_id == values["streamer_id"])
                     .values(**values))
    else:
        conn.execute(streamers.insert().values(**values))


def set_live(conn: Connection, streamer_id: str, live: bool, at: float,
             viewers_now: float | None = None) -> None:
    """Mark a known streamer live (a new stream starts now) or offline."""
    row = conn.execute(select(streamers.c.live).where(
        streamers.c.streamer_id == streamer_id)).first()
    if row is None:
        raise RequestError(404, f"unknown streamer '{streamer_id}': send it with PUT "
                                "/v1/streamers/live first")
    values: dict[str, Any] = {"live": live, "updated_at": at}
    if live and not row.live:
        values["live_since"] = at
    if viewers_now is not None:
        values["viewers"] = viewers_now
    elif not live:
        values["viewers"] = 0.0
    conn.execute(update(streamers).where(streamers.c.streamer_id == streamer_id)
                 .values(**values))


_ENGAGEMENT = (update(streamers).where(streamers.c.streamer_id == bindparam("sid")).values(
    impressions=streamers.c.impressions + bindparam("n_impressions", type_=Float),
    clicks=streamers.c.clicks + bindparam("n_clicks", type_=Float),
    watch_sum=streamers.c.watch_sum + bindparam("n_watch", type_=Float)))


def add_engagement(conn: Connection, streamer_id: str, impressions: float = 0.0,
                   clicks: float = 0.0, watch: float = 0.0) -> None:
    """Count an impression, click or watch share toward a streamer's logged estimates."""
    conn.execute(_ENGAGEMENT, {"sid": streamer_id, "n_impressions": impressions,
                               "n_clicks": clicks, "n_watch": watch})


_VIEWER_STATE = select(viewers.c.state).where(viewers.c.viewer_id == bindparam("vid"))
_VIEWER_STATE_LOCKED = _VIEWER_STATE.with_for_update()
_SAVE_VIEWER = (update(viewers).where(viewers.c.viewer_id == bindparam("vid"))
                .values(state=bindparam("new_state", type_=viewers.c.state.type),
                        updated_at=bindparam("new_at", type_=Float)))
_NEW_VIEWER = viewers.insert()


def viewer_state(conn: Connection, viewer_id: str, for_update: bool = False) -> dict | None:
    """A viewer's stored state (JSON), or None for a viewer never seen; `for_update`
    locks the row on PostgreSQL (SQLite's transactions are serialised already)."""
    query = _VIEWER_STATE_LOCKED if for_update else _VIEWER_STATE
    row = conn.execute(query, {"vid": viewer_id}).first()
    return None if row is None else row.state


def save_viewer(conn: Connection, viewer_id: str, state: dict, at: float) -> None:
    done = conn.execute(_SAVE_VIEWER, {"vid": viewer_id, "new_state": state, "new_at": at})
    if done.rowcount == 0:
        conn.execute(_NEW_VIEWER, {"viewer_id": viewer_id, "state": state, "updated_at": at})


def viewer_states(conn: Connection, ids: list[str]) -> dict[str, dict]:
    """The stored states of the known viewers among `ids`, locked for this transaction on
    PostgreSQL (in id order, so two workers lock shared viewers in the same order)."""
    query = _viewer_states(conn.dialect.name)
    return {r.viewer_id: r.state for r in conn.execute(query, {"ids": ids})}


@functools.cache
def _viewer_states(dialect: str):
    query = (select(viewers.c.viewer_id, viewers.c.state)
             .where(viewers.c.viewer_id.in_(bindparam("ids", expanding=True)))
             .order_by(viewers.c.viewer_id))
    return query.with_for_update() if dialect == "postgresql" else query


def save_viewers(conn: Connection, saved: list[tuple[str, dict, float]]) -> None:
    """Update the states of known viewers: `(viewer_id, state, at)` (one statement)."""
    if saved:
        conn.execute(_SAVE_VIEWER, [{"vid": v, "new_state": s, "new_at": at}
                                    for v, s, at in saved])


def insert_new_viewers(conn: Connection, new: list[tuple[str, dict, float]]) -> int:
    """Create viewers `(viewer_id, state, at)` (one statement); how many were created
    (fewer when another transaction created some of them first; those are left as
    that transaction wrote them)."""
    if not new:
        return 0
    done = conn.execute(_new_viewers_returning(conn.dialect.name),
                        [{"viewer_id": v, "state": s, "updated_at": at} for v, s, at in new])
    return len(done.all())


def lock_viewer(conn: Connection, viewer_id: str, at: float, fresh: dict) -> dict:
    """The viewer's state, locked for this transaction; created as `fresh` when new.

    Two workers creating the same viewer at once: the second insert does nothing and the
    row the first wrote is read instead (`ON CONFLICT DO NOTHING`, so no savepoint).
    """
    state = viewer_state(conn, viewer_id, for_update=True)
    if state is not None:
        return state
    done = conn.execute(_new_viewer_if_absent(conn.dialect.name),
                        {"viewer_id": viewer_id, "state": fresh, "updated_at": at})
    if done.rowcount == 1:
        return fresh
    return viewer_state(conn, viewer_id, for_update=True)


@functools.cache
def _new_viewer_if_absent(dialect: str):
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(viewers).on_conflict_do_nothing(index_elements=["viewer_id"])


@functools.cache
def _new_viewers_returning(dialect: str):
    return _new_viewer_if_absent(dialect).returning(viewers.c.viewer_id)


_NEW_DECISION = decisions.insert()
_DECISION_BY_KEY = select(decisions.c.viewer_id, decisions.c.response).where(
    decisions.c.request_key == bindparam("key"))


def insert_decision(conn: Connection, row: dict[str, Any]) -> bool:
    """Log a decision; False (and nothing written) when its `request_key` is taken."""
    if row.get("request_key") is None:
        # parameters apart from the statement: SQLAlchemy compiles the INSERT once
        conn.execute(_NEW_DECISION, row)
        return True
    return conn.execute(_insert_keyed_decision(conn.dialect.name), row).first() is not None


@functools.cache
def _insert_keyed_decision(dialect: str):
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (insert(decisions).on_conflict_do_nothing(index_elements=["request_key"])
            .returning(decisions.c.decision_id))


def insert_decisions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Log decisions without request keys (one multi-row statement)."""
    if rows:
        conn.execute(_NEW_DECISION, rows)


def decision_by_key(conn: Connection, key: str) -> dict[str, Any] | None:
    """The viewer and the answer of the decision logged for request key `key`."""
    row = conn.execute(_DECISION_BY_KEY, {"key": key}).mappings().first()
    return None if row is None else dict(row)


def get_decision(conn: Connection, decision_id: str,
                 columns: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A decision's row (only `columns` when given: the feedback path skips decoding the
    logged features), or a 404 `RequestError` naming the id."""
    chosen = [decisions.c[name] for name in columns] if columns else [decisions]
    row = conn.execute(select(*chosen).where(decisions.c.decision_id == decision_id)
                       ).mappings().first()
    if row is None:
        raise RequestError(404, f"unknown decision_id '{decision_id}'")
    return dict(row)


_EVENTS_BY_KEYS = select(events).where(events.c.idempotency_key.in_(
    bindparam("keys", expanding=True)))


def event_by_key(conn: Connection, key: str) -> dict[str, Any] | None:
    row = conn.execute(_EVENTS_BY_KEYS, {"keys": [key]}).mappings().first()
    return None if row is None else dict(row)


@functools.cache
def _insert_event(dialect: str):
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (insert(events).on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(events.c.event_id, events.c.idempotency_key))


def events_by_keys(conn: Connection, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The logged events of these idempotency keys, by key."""
    rows = conn.execute(_EVENTS_BY_KEYS, {"keys": keys}).mappings()
    return {r["idempotency_key"]: dict(r) for r in rows}


def decisions_by_ids(conn: Connection, ids: list[str], columns: tuple[str, ...]
                     ) -> dict[str, dict[str, Any]]:
    """`columns` of the logged decisions among `ids`, by id (unknown ids are left out)."""
    rows = conn.execute(_decisions_by_ids(columns), {"ids": ids}).mappings()
    return {r["decision_id"]: dict(r) for r in rows}


@functools.cache
def _decisions_by_ids(columns: tuple[str, ...]):
    return select(*[decisions.c[name] for name in columns]).where(
        decisions.c.decision_id.in_(bindparam("ids", expanding=True)))


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert events (one multi-row statement); the new `event_id` by idempotency key,
    without the keys that were taken already (those rows are not written)."""
    if not rows:
        return {}
    done = conn.execute(_insert_event(conn.dialect.name), rows)
    return {r.idempotency_key: int(r.event_id) for r in done}


_IMPRESSIONS = (update(streamers).where(streamers.c.streamer_id == bindparam("sid"))
                .values(impressions=streamers.c.impressions + bindparam("n")))


def add_impressions(conn: Connection, counts: dict[str, float]) -> None:
    """Count impressions toward streamers' logged estimates (one statement)."""
    if counts:
        conn.execute(_IMPRESSIONS, [{"sid": k, "n": n} for k, n in sorted(counts.items())])


def iter_decisions(conn: Connection, since: float | None = None,
                   until: float | None = None) -> Iterator[dict[str, Any]]:
    """Decisions with `since <= created_at < until`, in time order (ties by id)."""
    query = select(decisions).order_by(decisions.c.created_at, decisions.c.decision_id)
    if since is not None:
        query = query.where(decisions.c.created_at >= since)
    if until is not None:
        query = query.where(decisions.c.created_at < until)
    for row in conn.execute(query).mappings():
        yield dict(row)


def iter_events(conn: Connection, decision_ids: list[str] | None = None
                ) -> Iterator[dict[str, Any]]:
    """Events in the order they were committed (event_id), optionally of some decisions."""
    query = select(events).order_by(events.c.event_id)
    if decision_ids is not None:
        query = query.where(events.c.decision_id.in_(decision_ids))
    for row in conn.execute(query).mappings():
        yield dict(row)


def list_models(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(models).order_by(models.c.created_at))
            .mappings()]


def get_model(conn: Connection, version: str) -> dict[str, Any]:
    row = conn.execute(select(models).where(models.c.version == version)).mappings().first()
    if row is None:
        raise RequestError(404, f"unknown model version '{version}'")
    return dict(row)


def live_model(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(select(models).where(models.c.status == "live")).mappings().first()
    return None if row is None else dict(row)


def register_model(conn: Connection, version: str, run_path: str, at: float) -> dict:
    """Add a model as a candidate (an existing version is returned unchanged)."""
    existing = conn.execute(select(models).where(models.c.version == version)).mappings().first()
    if existing is None:
        conn.execute(models.insert().values(version=version, run_path=run_path,
                                            status="candidate", created_at=at))
    return get_model(conn, version)


def promote(conn: Connection, version: str, at: float) -> dict:
    """Make `version` live; the model live before is retired; the A/B split is cleared
    (all traffic to the new live model)."""
    get_model(conn, version)
    conn.execute(update(models).where((models.c.status == "live")
                                      & (models.c.version != version))
                 .values(status="retired", retired_at=at))
    conn.execute(update(models).where(models.c.version == version)
                 .values(status="live", promoted_at=at, retired_at=None))
    set_split(conn, [], at)
    return get_model(conn, version)


def rollback(conn: Connection, at: float) -> dict:
    """Make the most recently retired model live again (the live one is retired)."""
    row = conn.execute(select(models).where(models.c.status == "retired")
                       .order_by(models.c.retired_at.desc())).mappings().first()
    if row is None:
        raise RequestError(409, "nothing to roll back to: no model was retired yet")
    return promote(conn, row["version"], at)


def current_split(conn: Connection) -> list[dict[str, Any]]:
    row = conn.execute(select(splits.c.arms).order_by(splits.c.split_id.desc())).first()
    return [] if row is None else list(row.arms)


def set_split(conn: Connection, arms: list[dict[str, Any]], at: float) -> None:
    """Record a new A/B split (`[{name, model, share}]`; empty = all to the live model)."""
    conn.execute(splits.insert().values(created_at=at, arms=arms))
