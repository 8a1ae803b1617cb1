"""Which model serves a viewer: the live model and the A/B split, read with one query.

Every recommendation must see a promotion, a rollback or a new split made by another
worker or by `liveq models` at once, so the database is asked on every request; but
only one small question: the live model's version and the newest split's id (both
scalar subqueries of one SELECT). A split's arms are decoded once per split id, and a
model's row once per version (a version names one checkpoint, so its run never changes).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Connection, func, select

from liveq.serving.tables import models, splits

_QUERY = select(
    select(models.c.version).where(models.c.status == "live").limit(1).scalar_subquery(),
    select(func.max(splits.c.split_id)).scalar_subquery())


class Routing:
    """`lookup(conn)`: `(live version or None, the split's arms)` as of this transaction."""

    def __init__(self) -> None:
        self._split: tuple[int | None, list[dict[str, Any]]] = (None, [])
        self._lock = threading.Lock()

    def lookup(self, conn: Connection) -> tuple[str | None, list[dict[str, Any]]]:
        live, split_id = conn.execute(_QUERY).one()
        with self._lock:
            cached_id, arms = self._split
        if split_id != cached_id:
            row = (conn.execute(select(splits.c.arms).where(splits.c.split_id == split_id))
                   .first() if split_id is not None else None)
            arms = [] if row is None else list(row.arms)
            with self._lock:
                self._split = (split_id, arms)
        return live, arms
