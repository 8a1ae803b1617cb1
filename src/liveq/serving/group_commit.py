"""Group commit: one writer thread per process commits the decisions and feedback events
of many concurrent requests in one transaction, each request still answered only after
the commit that holds its write.

Without it every request thread opened its own write transaction: on SQLite they queued
on the database lock through SQLite's busy handler, which sleeps in steps of milliseconds
while it waits, and every commit paid its own fsync (`synchronous=FULL`). Here a request
hands its write (a function of a `Connection`) to the writer and waits; the writer takes
whatever has queued up (up to `max_batch`), runs each write in its own savepoint (a write
that raises, such as an unknown decision id, is rolled back alone and its exception goes
to its request), commits once, then answers them all. If the batch's commit itself fails
(a PostgreSQL deadlock between two workers' batches, say), nothing of it was committed,
and each write is run again in a transaction of its own, so one bad write cannot fail
its neighbours.

Writes of one kind can also be merged: `submit_merged(merge, item)` queues an item, and
the writer hands every item of that `merge` in a batch to one call `merge(conn, items)`,
which returns one result per item (an exception instance for an item it refuses). The
single-event feedback route uses it: a batch of 16 events is logged with the handful of
statements `liveq.serving.event_log` asks for all of them, not 16 times those and a
savepoint each.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from liveq.serving.db import WriteLock

T = TypeVar("T")
MAX_BATCH = 64
Merge = Callable[[Connection, list[Any]], list[Any]]
"""`merge(conn, items)`: one result per item, in order; an exception instance for an item
it refuses (raised to that item's request; the merge must have written nothing for it)."""


class _Merged:
    """A queued item of a merged write."""

    __slots__ = ("merge", "item")

    def __init__(self, merge: Merge, item: Any):
        self.merge, self.item = merge, item


class GroupCommit:
    """`run(work)`: `work(conn)` committed, with others, before its result is returned."""

    def __init__(self, engine: Engine, max_batch: int = MAX_BATCH,
                 on_commit: Callable[[int], None] | None = None):
        self.engine, self.max_batch, self.on_commit = engine, max_batch, on_commit
        self._lock = WriteLock(engine)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.batches = self.writes = 0
        threading.Thread(target=self._loop, name="liveq-group-commit", daemon=True).start()

    def run(self, work: Callable[[Connection], T]) -> T:
        return self.submit(work).result()

    def submit(self, work: Callable[[Connection], T]) -> Future:
        """Queue `work`; the future holds its result once the commit that holds it is
        done (an event-loop caller awaits it with `asyncio.wrap_future`)."""
        done: Future = Future()
        self._queue.put((work, done))
        return done

    def submit_merged(self, merge: Merge, item: Any) -> Future:
        """Queue `item` for `merge`, called once for all its items in a batch; the future
        holds the item's result once the commit that holds it is done."""
        done: Future = Future()
        self._queue.put((_Merged(merge, item), done))
        return done

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            # The batch is taken once this process holds the write lock: while another
            # worker's commit (and its fsync) holds it, the writes that arrive here
            # queue and go into this commit, instead of waiting for the next one.
            with self._lock:
                batch = [first]
                while len(batch) < self.max_batch:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                # A request awaited on the event loop is cancelled when its client goes
                # away; its write is dropped (nothing was answered), and the others'
                # futures are marked running so none can be cancelled after its write
                # committed.
                batch = [item for item in batch if item[1].set_running_or_notify_cancel()]
                if batch:
                    self._commit(batch)

    def _commit(self, batch: list[tuple[Callable, Future]]) -> None:
        """Commit `batch` (the write lock is held)."""
        try:
            with self.engine.begin() as conn:
                outcomes = _run_batch(conn, [work for work, _ in batch])
        except Exception as exc:  # noqa: BLE001  (the commit failed: nothing is durable)
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
            else:
                for item in batch:
                    self._commit([item])
            return
        self.batches, self.writes = self.batches + 1, self.writes + len(batch)
        if self.on_commit is not None:
            self.on_commit(len(batch))
        for (_, done), (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                done.set_result(value)
            else:
                done.set_exception(value)


def _run_batch(conn: Connection, works: list) -> list[tuple[bool, Any]]:
    """Each write's `(ok, result or exception)`: plain writes one by one, the items of a
    merge in one call, in one savepoint, at the place of the first of them."""
    outcomes: list[tuple[bool, Any] | None] = [None] * len(works)
    merged: dict[Merge, list[int]] = {}
    for i, work in enumerate(works):
        if isinstance(work, _Merged):
            merged.setdefault(work.merge, []).append(i)
    done: set[Merge] = set()
    for i, work in enumerate(works):
        if not isinstance(work, _Merged):
            outcomes[i] = _attempt(conn, work)
        elif work.merge not in done:
            done.add(work.merge)
            places = merged[work.merge]
            ok, results = _attempt(conn, lambda c, m=work.merge, p=places: m(
                c, [works[j].item for j in p]))
            for j, result in zip(places, results if ok else [results] * len(places),
                                 strict=True):
                outcomes[j] = (False, result) if isinstance(result, BaseException) else (
                    True, result)
    return outcomes


def _attempt(conn: Connection, work: Callable[[Connection], Any]) -> tuple[bool, Any]:
    """`(True, result)`, or `(False, exception)` with the write's savepoint rolled back."""
    try:
        with conn.begin_nested():
            return True, work(conn)
    except Exception as exc:  # noqa: BLE001  (handed to the request's thread)
        return False, exc
