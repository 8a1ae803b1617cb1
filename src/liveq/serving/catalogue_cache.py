"""An in-process cache of the live catalogue, checked against the database on every use.

Reading the whole catalogue per recommendation (every row, every topic vector decoded
from JSON) was most of a recommendation's time with 1,000 live streamers. The cache
keeps the decoded rows and, per request, asks the database for a stamp of the catalogue
in two parts: one that moves with every change of membership, audience, topic or live
state, one that moves with the logged counters (which feedback moves). An equal stamp
means nothing changed; a change in the counters alone re-reads only those three numeric
columns; anything else reloads the catalogue. The database stays the only shared state,
so several worker processes each keep their own cache and all see every change at their
next request.

On SQLite the stamp is the `catalogue_version` row that triggers keep (migration 0006):
one primary-key read. On PostgreSQL it is an aggregate over the live rows: how many, the
sum and maximum of `updated_at` (every change of membership, audience, topic or live
state writes it) and the sums of the counters; that read is linear in the live rows
(about 0.2 ms for 1,000 on SQLite, where it was used before the version row).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, func, select, text

from liveq.serving import store
from liveq.serving.observe import Catalogue
from liveq.serving.tables import streamers

_LIVE = streamers.c.live.is_(True)


def _total(column):
    return func.coalesce(func.sum(column), 0.0)


_VERSION = text("SELECT members, counters FROM catalogue_version WHERE id = 1")
_FINGERPRINT = select(func.count(), _total(streamers.c.updated_at),
                      func.max(streamers.c.updated_at), _total(streamers.c.impressions),
                      _total(streamers.c.clicks), _total(streamers.c.watch_sum)).where(_LIVE)
_COUNTERS = (select(streamers.c.impressions, streamers.c.clicks, streamers.c.watch_sum)
             .where(_LIVE).order_by(streamers.c.streamer_id))
_TIMES = (select(streamers.c.live_since, streamers.c.first_seen).where(_LIVE)
          .order_by(streamers.c.streamer_id))


def _stamp(conn: Connection) -> tuple[tuple, tuple]:
    """`(membership part, counters part)` of the catalogue's stamp."""
    if conn.dialect.name == "sqlite":
        members, counters = conn.execute(_VERSION).one()
        return (members,), (counters,)
    fingerprint = tuple(conn.execute(_FINGERPRINT).one())
    return fingerprint[:3], fingerprint[3:]


@dataclass
class _Entry:
    stamp: tuple[tuple, tuple]
    catalogue: Catalogue  # minutes_live / age_minutes hold live_since / first_seen here


class CatalogueCache:
    """`live(conn, at)`: the live catalogue as `store.live_catalogue` returns it."""

    def __init__(self) -> None:
        self._entry: _Entry | None = None
        self._lock = threading.Lock()

    def live(self, conn: Connection, at: float) -> Catalogue:
        stamp = _stamp(conn)
        with self._lock:
            entry = self._entry
        if entry is None or entry.stamp[0] != stamp[0]:
            entry = _Entry(stamp, _load(conn))
        elif entry.stamp != stamp:
            counters = np.asarray(conn.execute(_COUNTERS).all(), np.float64).reshape(-1, 3)
            old = entry.catalogue
            entry = _Entry(stamp, Catalogue(
                old.ids, old.topic, old.viewers, old.minutes_live, counters[:, 0],
                counters[:, 1], counters[:, 2], old.age_minutes, old.index))
        with self._lock:
            self._entry = entry
        return _as_of(entry.catalogue, at)


def _load(conn: Connection) -> Catalogue:
    """The live rows with `live_since` and `first_seen` in place of the ages."""
    catalogue = store.live_catalogue(conn, 0.0)
    times = np.asarray(conn.execute(_TIMES).all(), np.float64).reshape(-1, 2)
    catalogue.minutes_live, catalogue.age_minutes = times[:, 0], times[:, 1]
    return catalogue


def _as_of(cached: Catalogue, at: float) -> Catalogue:
    """The cached rows with minutes live and age as of `at` (as `store.live_catalogue`)."""
    return Catalogue(cached.ids, cached.topic, cached.viewers,
                     np.maximum(at - cached.minutes_live, 0.0) // 60, cached.impressions,
                     cached.clicks, cached.watch_sum,
                     np.maximum(at - cached.age_minutes, 0.0) / 60, cached.index)
