"""The candidate table: which live streams the agent may rank, and how each is described.

Retrieval mirrors a real feed (followed live streamers, trending, a random sample of the
rest); the rule itself lives in `liveq.features.retrieval` so a service retrieves exactly
as the simulator does. How each candidate is described is `liveq.features` (the schema and
its builders), so a service computes the same features from its own logs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from liveq.features import retrieval
from liveq.features.schema import CANDIDATE_FEATURES
from liveq.sim.config import LiveStreamConfig

__all__ = ["CANDIDATE_FEATURES", "retrieve"]  # the names, kept here for older imports


def retrieve(cfg: LiveStreamConfig, live: np.ndarray, viewers: np.ndarray,
             follows: np.ndarray, rng: np.random.Generator,
             for_rows: Callable[[Callable[[slice], None], int], None]) -> np.ndarray:
    """`(n, K)` int32 candidate ids, -1 for empty slots (`liveq.features.retrieval.retrieve`
    with the config's table sizes).

    live: `(n_streamers,)` bool; viewers: `(n_streamers,)` counts; follows: `(n, F)`;
    for_rows: runs the per-row work (`RowPool.run`).
    """
    return retrieval.retrieve(live, viewers, follows, n_candidates=cfg.n_candidates,
                              followed_slots=cfg.followed_slots,
                              trending_slots=cfg.trending_slots, rng=rng, for_rows=for_rows)
