"""Row-parallel numpy work for large batches.

Per-session computations that use no random numbers (building observations, dropping
duplicate candidates) give the same result whatever the split, so for large batches they
run on a few threads: numpy releases the interpreter lock inside large array operations.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

MIN_ROWS = 8192  # below this the threads' overhead outweighs the gain
MAX_WORKERS = 4
_pool: ThreadPoolExecutor | None = None


def workers() -> int:
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def for_row_chunks(fill: Callable[[slice], None], n_rows: int) -> None:
    """Call `fill(rows)` on contiguous row slices covering `range(n_rows)`."""
    global _pool
    n_workers = workers()
    if n_rows < MIN_ROWS or n_workers == 1:
        fill(slice(0, n_rows))
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="liveq-sim")
    step = -(-n_rows // n_workers)
    chunks = [slice(lo, min(lo + step, n_rows)) for lo in range(0, n_rows, step)]
    for done in [_pool.submit(fill, rows) for rows in chunks]:
        done.result()  # re-raises a worker's exception here
