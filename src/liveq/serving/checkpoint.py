"""SQLite WAL checkpoints off the request path: a background thread per worker process.

SQLite's automatic checkpoint runs inside the commit that pushed the WAL past 1,000
pages: that commit copies the WAL's pages into the database file and fsyncs it before it
returns, so the requests waiting on it (a whole group commit of them) answer late. That
is a suspect for the recommend p99's occasional spikes: at 500 decisions/s the WAL
passed 1,000 pages every second or two. The service's connections turn the automatic
checkpoint off (`PRAGMA wal_autocheckpoint=0`, `liveq.serving.db.make_engine`) and this
thread runs `PRAGMA wal_checkpoint(PASSIVE)` every `interval_s` on a connection of its
own. A PASSIVE checkpoint takes no lock a writer or reader waits for: it copies what it
can and leaves the rest for the next one, so commits never wait on it.

Durability is unchanged: a commit is durable when its WAL frames are fsynced
(`synchronous=FULL`), whatever the checkpoint does later; a crash before a checkpoint
leaves the frames in the WAL, and the next connection replays them. Other programs on the
log (`liveq models`, `liveq learn`) keep SQLite's automatic checkpoint.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from typing import Any

INTERVAL_S = 1.0
log = logging.getLogger(__name__)


def start_checkpoints(engine: Any, path: str, interval_s: float = INTERVAL_S) -> None:
    """Checkpoint the WAL of the SQLite database at `path` every `interval_s` seconds
    while `engine` (the service's, whose connections do not checkpoint) is alive."""
    alive = weakref.ref(engine)
    threading.Thread(target=_loop, args=(alive, path, interval_s),
                     name="liveq-wal-checkpoint", daemon=True).start()


def _loop(alive: weakref.ref, path: str, interval_s: float) -> None:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        while alive() is not None:
            time.sleep(interval_s)
            checkpoint(conn)
    finally:
        conn.close()


def checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int] | None:
    """One PASSIVE checkpoint: `(busy, WAL frames, frames checkpointed)` as SQLite reports
    them; None when it failed (logged; the next one tries again)."""
    try:
        return tuple(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
    except sqlite3.Error as exc:
        log.warning("WAL checkpoint failed: %s", exc)
        return None
