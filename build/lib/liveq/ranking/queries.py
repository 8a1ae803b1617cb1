"""What an offline ranking model sees: queries with their live candidates.

The offline protocol (`liveq.ranking.protocol`) turns a log into `RankingQueries`; every
offline model (POP, REP, BPR, the logged-Q models) fits on the training part of the log
and scores the candidates of each query. Candidates are variable in number (the streamers
live at the query's time), so they are stored flat with offsets, CSR-style.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np

from liveq.data.log import InteractionLog


class RankingQueries(NamedTuple):
    """One row per target interaction; candidates of query `i` are
    `cand_item[offsets[i]:offsets[i + 1]]`."""

    user: np.ndarray  # (n,) int32 dense user id
    time: np.ndarray  # (n,) int32 step at which the target interaction starts
    target: np.ndarray  # (n,) int32 item the user actually went on to watch
    history: np.ndarray  # (n, H) int32 the user's previous items, most recent last, -1 padded
    history_time: np.ndarray  # (n, H) int32 start steps of `history`, -1 padded
    offsets: np.ndarray  # (n + 1,) int64 into the flat candidate arrays
    cand_item: np.ndarray  # (total,) int32 items available at `time` (the target included)
    cand_viewers: np.ndarray  # (total,) int32 other users watching the candidate at `time`
    is_repeat: np.ndarray  # (n,) bool the target is in the user's earlier interactions

    @property
    def n_queries(self) -> int:
        return len(self.user)

    def query_of_candidate(self) -> np.ndarray:
        """`(total,)` index of the query each flat candidate belongs to."""
        return np.repeat(np.arange(self.n_queries), np.diff(self.offsets))


class OfflineModel(Protocol):
    """A recommender evaluated offline: fit on the training log, score live candidates."""

    name: str

    def fit(self, train: InteractionLog, seed: int) -> None:
        """Learn from the interactions of the training period (the full id space is kept)."""

    def score(self, queries: RankingQueries) -> np.ndarray:
        """`(total,)` float scores for `queries.cand_item`; higher ranks first."""
