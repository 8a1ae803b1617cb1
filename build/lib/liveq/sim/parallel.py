"""Row-parallel numpy work for large batches, on a thread pool its owner closes.

Per-session computations that use no random numbers (building observations, dropping
duplicate candidates) give the same result whatever the split, so for large batches they
run on a few threads: numpy releases the interpreter lock inside large array operations.
Each simulator core owns one `RowPool`; nothing is shared across the process.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

MIN_ROWS = 8192  # below this the threads' overhead outweighs the gain


class RowPool:
    """Runs `fill(rows)` over row slices on up to `max_workers` threads (made when needed)."""

    def __init__(self, max_workers: int):
        self.workers = max(1, min(os.cpu_count() or 1, max_workers))
        self._pool: ThreadPoolExecutor | None = None

    def run(self, fill: Callable[[slice], None], n_rows: int) -> None:
        """Call `fill(rows)` on contiguous row slices covering `range(n_rows)`."""
        if n_rows < MIN_ROWS or self.workers == 1:
            fill(slice(0, n_rows))
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                            thread_name_prefix="liveq-sim")
            # An owner dropped without close() still lets the threads go.
            weakref.finalize(self, self._pool.shutdown, wait=False)
        step = -(-n_rows // self.workers)
        chunks = [slice(lo, min(lo + step, n_rows)) for lo in range(0, n_rows, step)]
        for done in [self._pool.submit(fill, rows) for rows in chunks]:
            done.result()  # re-raises a worker's exception here

    def close(self) -> None:
        """Stop the threads; a later `run` starts new ones."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
