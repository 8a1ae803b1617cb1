"""The log's database: engines for SQLite (WAL) and PostgreSQL, and migrations at startup.

SQLite runs in WAL mode with `synchronous=FULL` (a commit is on disk before it returns;
the service checkpoints the WAL in a thread of its own, `liveq.serving.checkpoint`) and
every transaction starts with `BEGIN IMMEDIATE`, so writers from several worker
processes queue on the database lock instead of failing on a lock upgrade; connections
opened with `reading` begin DEFERRED instead and never take the lock. PostgreSQL is
reached through psycopg 3 (`postgresql://` URLs are read as `postgresql+psycopg://`).
`migrate` applies the Alembic migrations under a lock (a file lock beside a SQLite file,
an advisory lock on PostgreSQL), so workers starting at once migrate exactly once.

`WriteLock` queues the group-commit writers of several worker processes on a file lock
beside a SQLite database before they ask SQLite for its write lock: SQLite's busy
handler polls a held lock with sleeps of 1, 2, 5, 10 ... ms, so a writer that found the
other worker committing slept several milliseconds past the moment the lock was free;
`flock` wakes it at once. (Other writers, such as `liveq models`, still queue through the
busy handler; the file lock only spares the hot path its sleeps.)
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from liveq.core.errors import ConfigError
from liveq.serving.checkpoint import start_checkpoints

MIGRATIONS = Path(__file__).parent / "migrations"
ADVISORY_LOCK_ID = 7_311_402_014  # any constant shared by every liveq service
BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "liveq_read_only"  # execution option of `reading` connections
_READ_BEGIN, _WRITE_BEGIN = "BEGIN DEFERRED", "BEGIN IMMEDIATE"


def normalise_url(url: str) -> str:
    """The SQLAlchemy URL to use: psycopg 3 for PostgreSQL; a `ConfigError` for others."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"--db: not a database URL: {url!r} ({exc})") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(
            hide_password=False)
    if backend != "sqlite":
        raise ConfigError(f"--db: {backend} is not supported; use sqlite:///PATH or "
                          "postgresql://USER@HOST/DB")
    if not parsed.database or parsed.database == ":memory:":
        raise ConfigError("--db: SQLite needs a file (several workers share it), "
                          "e.g. sqlite:///liveq-serve/log.db")
    return url


def make_engine(url: str, background_checkpoints: bool = False) -> Engine:
    """An engine for `url` with the durability and locking settings above;
    `background_checkpoints` (the service's engine) moves SQLite's WAL checkpoints from
    its commits to a thread of their own (`liveq.serving.checkpoint`)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000},
                               pool_size=8, max_overflow=16)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        if background_checkpoints:
            event.listen(engine, "connect", _no_autocheckpoint)
            start_checkpoints(engine, path)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)


def reading(engine: Engine) -> Connection:
    """A connection for reads only: on SQLite its transactions begin DEFERRED, so they
    read a WAL snapshot without taking the write lock (writers do not wait for them)."""
    return engine.connect().execution_options(**{READ_ONLY: True})


def _sqlite_begin(conn: Connection) -> None:
    # on the driver's connection itself: through `exec_driver_sql` SQLAlchemy's execution
    # machinery added about 10 us to every transaction (measured, busy machine)
    read_only = conn.get_execution_options().get(READ_ONLY)
    conn.connection.driver_connection.execute(_READ_BEGIN if read_only else _WRITE_BEGIN)


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event opens transactions
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _no_autocheckpoint(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


class WriteLock:
    """A context manager around a write transaction: an exclusive `flock` beside a
    SQLite database, nothing on PostgreSQL (its row locks queue writers without
    polling). One per process and writer thread."""

    def __init__(self, engine: Engine):
        self._handle = None
        if engine.dialect.name == "sqlite":
            path = Path(engine.url.database).with_suffix(".write.lock")
            self._handle = open(path, "a")  # held for the life of the process

    def __enter__(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; safe when several processes call it."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migration_lock(engine), engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(:id)"),
                                   {"id": ADVISORY_LOCK_ID})
                connection.commit()


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """An exclusive file lock beside a SQLite database (PostgreSQL locks inside)."""
    if engine.dialect.name != "sqlite":
        yield
        return
    lock_path = Path(engine.url.database).with_suffix(".migrate.lock")
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_log(url: str, background_checkpoints: bool = False) -> Engine:
    """An engine on the log at `url` (`make_engine`), migrated to the newest schema; a
    `ConfigError` names the URL when the database cannot be reached."""
    engine = make_engine(url, background_checkpoints)
    try:
        migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(f"--db: cannot open {make_url(url).render_as_string()}: "
                          f"{reason}") from None
    return engine
