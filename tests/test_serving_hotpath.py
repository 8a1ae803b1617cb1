"""The serving hot path's caches and batching give what the plain reads and writes give:
the catalogue cache against `store.live_catalogue`, group commit against one transaction
per write."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sqlalchemy import delete, func, select, update

from liveq.core.errors import RequestError
from liveq.serving import store
from liveq.serving.catalogue_cache import CatalogueCache
from liveq.serving.db import open_log, reading
from liveq.serving.group_commit import GroupCommit
from liveq.serving.tables import streamers
from serving_support import new_postgres_database, postgres_url  # noqa: F401


@pytest.fixture
def engine(tmp_path):
    engine = open_log(f"sqlite:///{tmp_path / 'log.db'}")
    yield engine
    engine.dispose()


def _streamer(i: int, at: float) -> dict:
    return {"streamer_id": f"s{i}", "topic": [0.1 * i, 0.2, -0.3], "viewers": float(i),
            "live": True, "live_since": at - 600 * i, "first_seen": at - 6000 * i,
            "impressions": 10.0 * i, "clicks": float(i), "watch_sum": 0.5 * i,
            "updated_at": at}


def _same(a, b) -> None:
    assert a.ids == b.ids
    for name in ("topic", "viewers", "minutes_live", "impressions", "clicks", "watch_sum",
                 "age_minutes"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.fixture(params=["sqlite", "postgres"])
def any_engine(request, tmp_path):
    """A fresh log on SQLite (the cache's version row) and PostgreSQL (its fingerprint)."""
    url = (f"sqlite:///{tmp_path / 'log.db'}" if request.param == "sqlite" else
           new_postgres_database(request.getfixturevalue("postgres_url")))
    engine = open_log(url)
    yield engine
    engine.dispose()


def test_catalogue_cache_follows_every_kind_of_change(any_engine):
    engine, cache, at = any_engine, CatalogueCache(), 1_000_000.0
    with engine.begin() as conn:
        for i in range(1, 6):
            store.upsert_streamer(conn, _streamer(i, at))

    def check(when: float) -> None:
        with reading(engine) as conn:
            _same(cache.live(conn, when), store.live_catalogue(conn, when))

    check(at)
    check(at + 125.0)  # time alone moves minutes live and age
    with engine.begin() as conn:  # feedback moves the counters only
        store.add_engagement(conn, "s2", impressions=1.0, clicks=1.0, watch=0.25)
    check(at + 130.0)
    with engine.begin() as conn:  # a streamer goes offline, another comes back changed
        store.set_live(conn, "s3", False, at + 140.0)
        store.upsert_streamer(conn, {**_streamer(4, at + 150.0), "topic": [1.0, 0.0, 0.0]})
    check(at + 160.0)
    with engine.begin() as conn:  # any writer that keeps updated_at, not only the store
        conn.execute(update(streamers).where(streamers.c.streamer_id == "s5")
                     .values(viewers=77.0, updated_at=at + 162.0))
    check(at + 165.0)
    if engine.dialect.name == "sqlite":  # the version row's triggers see any write at all
        with engine.begin() as conn:
            conn.execute(update(streamers).where(streamers.c.streamer_id == "s5")
                         .values(viewers=78.0))
        check(at + 166.0)
    with engine.begin() as conn:
        conn.execute(delete(streamers).where(streamers.c.streamer_id == "s1"))
    check(at + 170.0)
    with reading(engine) as conn:
        assert "s3" not in cache.live(conn, at + 160.0).ids
        assert cache.live(conn, at).topic[cache.live(conn, at).index["s4"]].tolist() == [
            1.0, 0.0, 0.0]


def test_group_commit_answers_each_write_and_isolates_failures(engine):
    writes = GroupCommit(engine)
    at = 2_000_000.0

    def add(i: int):
        def work(conn):
            if i % 7 == 0:
                store.upsert_streamer(conn, _streamer(1000 + i, at))  # rolled back below
                raise RequestError(404, f"write {i} refused")
            store.upsert_streamer(conn, _streamer(i, at))
            return i
        return work

    def attempt(i: int):
        try:
            return writes.run(add(i))
        except RequestError as exc:
            return str(exc)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(attempt, range(1, 101)))
    assert answers == [f"write {i} refused" if i % 7 == 0 else i for i in range(1, 101)]
    with engine.connect() as conn:
        ids = set(conn.execute(select(streamers.c.streamer_id)).scalars())
        assert conn.execute(select(func.count()).select_from(streamers)).scalar() == 86
    assert ids == {f"s{i}" for i in range(1, 101) if i % 7}
    assert writes.writes == 100 and 1 <= writes.batches <= 100


def test_group_commit_drops_a_cancelled_write_and_keeps_running(engine):
    writes = GroupCommit(engine)
    at = 3_000_000.0
    gate = threading.Event()
    blocker = writes.submit(lambda conn: gate.wait(10))  # holds the writer thread
    cancelled = writes.submit(lambda conn: store.upsert_streamer(conn, _streamer(1, at)))
    assert cancelled.cancel()
    gate.set()
    assert blocker.result(10) is True
    assert writes.submit(lambda conn: store.upsert_streamer(conn, _streamer(2, at))
                         ).result(10) is None
    with reading(engine) as conn:
        assert store.live_catalogue(conn, at).ids == ["s2"]


def _hold(writes: GroupCommit):
    """A write that holds the writer thread (already running) until the gate opens."""
    running, gate = threading.Event(), threading.Event()

    def hold(conn) -> bool:
        running.set()
        return gate.wait(10)

    blocker = writes.submit(hold)
    assert running.wait(10)
    return blocker, gate


def test_merged_writes_are_one_call_per_batch_with_one_answer_each(engine):
    writes = GroupCommit(engine)
    at = 4_000_000.0
    calls: list[list[int]] = []

    def merge(conn, items: list[int]) -> list:
        calls.append(items)
        out = []
        for i in items:
            if i % 5 == 0:
                out.append(RequestError(422, f"item {i} refused"))
            else:
                store.upsert_streamer(conn, _streamer(i, at))
                out.append(i * 10)
        return out

    blocker, gate = _hold(writes)  # the rest queue up behind it, then go in one batch
    futures = [writes.submit_merged(merge, i) for i in range(1, 13)]
    plain = writes.submit(lambda conn: store.upsert_streamer(conn, _streamer(99, at)))
    gate.set()
    assert blocker.result(10) is True and plain.result(10) is None
    for i, future in enumerate(futures, start=1):
        if i % 5 == 0:
            with pytest.raises(RequestError, match=f"item {i} refused"):
                future.result(10)
        else:
            assert future.result(10) == i * 10
    assert calls == [list(range(1, 13))]  # one call for the whole batch, in order
    with reading(engine) as conn:
        assert set(store.live_catalogue(conn, at).ids) == {
            f"s{i}" for i in [*range(1, 13), 99] if i % 5}


def test_a_merge_that_raises_fails_only_its_items(engine):
    writes = GroupCommit(engine)
    at = 5_000_000.0

    def broken(conn, items):
        store.upsert_streamer(conn, _streamer(7, at))  # rolled back with its savepoint
        raise RuntimeError("merge failed")

    blocker, gate = _hold(writes)
    failed = [writes.submit_merged(broken, i) for i in range(3)]
    kept = writes.submit(lambda conn: store.upsert_streamer(conn, _streamer(8, at)))
    gate.set()
    blocker.result(10)
    for future in failed:
        with pytest.raises(RuntimeError, match="merge failed"):
            future.result(10)
    assert kept.result(10) is None
    with reading(engine) as conn:
        assert store.live_catalogue(conn, at).ids == ["s8"]


def test_the_service_engine_checkpoints_the_wal_in_the_background(tmp_path):
    """Its connections never checkpoint in a commit; the thread copies the WAL's pages into
    the database file within a few intervals of the writes."""
    path = tmp_path / "log.db"
    engine = open_log(f"sqlite:///{path}", background_checkpoints=True)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            conn.rollback()
        time.sleep(1.5)  # the migrations' pages are checkpointed
        before = path.stat().st_size
        with engine.begin() as conn:
            for i in range(1, 2001):
                store.upsert_streamer(conn, _streamer(i, 1_000.0))
        deadline = time.monotonic() + 10.0
        while path.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size > before + 100_000  # the rows reached the database file
    finally:
        engine.dispose()


def test_writes_that_queue_while_another_worker_commits_share_one_commit(engine):
    """The writer takes its batch once it holds the write lock: writes that arrive while
    another process's commit holds it all go into the next commit."""
    from liveq.serving.db import WriteLock

    writes = GroupCommit(engine)
    other = WriteLock(engine)  # another worker's writer, in the middle of its commit
    with other:
        first = writes.submit(lambda conn: store.upsert_streamer(conn, _streamer(1, 1.0)))
        time.sleep(0.3)  # the writer has taken the first write and waits for the lock
        rest = [writes.submit(lambda conn, i=i: store.upsert_streamer(conn, _streamer(i, 1.0)))
                for i in range(2, 11)]
        time.sleep(0.1)
        assert writes.batches == 0 and not first.done()
    for done in [first, *rest]:
        done.result(timeout=30)
    assert (writes.batches, writes.writes) == (1, 10)
