"""`--compat liverec`: the LiveRec code's own POP, REP and repeat rule, to reproduce the paper.

liveq's offline protocol follows the LiveRec code (github.com/JRappaz/liverec, see
`liveq.ranking.protocol`) but changes three things on purpose. A researcher who wants the
paper's baseline numbers first, and liveq's corrected ones beside them, runs
`liveq eval-offline LOG --compat liverec --models pop,rep`, which uses the code's rules
(`baselines.py` `POP` / `REP` `compute_rank`, `data.py` `get_sequences`):

* **POP** scores a candidate by its number of training rows (`Counter` of the streamer
  column of the rows that stop before `pivot_1`), not by its viewers at the target's time.
* **REP** scores a candidate by how often it appears in the history the code passes it,
  `inputs[b, :-1]`: the history *without its most recent item* (the last position of the
  right-aligned input sequence is dropped). Ties are left to tie-breaking, no POP order.
* **Repeat target**: the code tests the target against `pos[b, :-1]`, the shifted target
  sequence, which is the history *without its oldest item*; liveq tests the whole history.

Everything else is shared: splits, history length 16, availability, full ranking and the
HR/NDCG formulas are already the code's. Ties stay broken at random with the seed in both
modes (the code's `argsort` breaks them by candidate order, which depends on the order
rows appear in the file). Models without a LiveRec definition (bpr and the logged-Q
rankers) are liveq's own in both modes; only the repeat/new split changes for them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from liveq.core.config import ConfigError
from liveq.data.log import InteractionLog
from liveq.ranking.models import OFFLINE_MODELS, history_counts
from liveq.ranking.queries import OfflineModel, RankingQueries

COMPAT = ("liveq", "liverec")


def check_compat(compat: str) -> str:
    """`compat` if known; else a ValueError naming it and the known modes."""
    if compat not in COMPAT:
        raise ValueError(f"unknown compat mode {compat!r}; expected one of {', '.join(COMPAT)}")
    return compat


def liverec_is_repeat(history: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`(n,)` the LiveRec code's repeat flag: the target is among the history items *after
    the oldest present one* (`pos[b, :-1]` of its shifted target sequence).

    `history` is `(n, H)`, most recent last, -1 padded on the left.
    """
    history = np.asarray(history)
    present = history >= 0
    oldest = np.argmax(present, axis=1)  # first present column (every query has one)
    later = present & (np.arange(history.shape[1]) > oldest[:, None])
    return ((history == np.asarray(target)[:, None]) & later).any(axis=1)


def liverec_targets(queries: RankingQueries) -> RankingQueries:
    """`queries` with `is_repeat` by the LiveRec code's rule (see `liverec_is_repeat`)."""
    return queries._replace(is_repeat=liverec_is_repeat(queries.history, queries.target))


class TrainingCountPop:
    """LiveRec's POP: a candidate's number of rows in the training log (rows, not users:
    a viewer who came back five times counts five). Unseen streamers score 0."""

    name = "pop"

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.int64)

    def fit(self, train: InteractionLog, seed: int) -> None:
        """Count the training rows of every streamer (the log's full id space is kept)."""
        self.counts = np.bincount(train.frame["item"].to_numpy(), minlength=train.n_items)

    def score(self, queries: RankingQueries) -> np.ndarray:
        items = queries.cand_item
        known = items < len(self.counts)
        return np.where(known, self.counts[np.where(known, items, 0)], 0).astype(np.float64)


class HistoryCountRep:
    """LiveRec's REP: how often the candidate appears in the history without its most
    recent item (the code counts `inputs[b, :-1]`); no tie-breaking by viewers."""

    name = "rep"

    def fit(self, train: InteractionLog, seed: int) -> None:
        """Nothing to learn: the history comes with each query."""

    def score(self, queries: RankingQueries) -> np.ndarray:
        history = queries.history.copy()
        history[:, -1] = -1  # the most recent item is the last column
        return history_counts(queries._replace(history=history)).astype(np.float64)


def _no_settings(model: type) -> Callable[..., OfflineModel]:
    def build(settings: dict | None = None) -> OfflineModel:
        if settings:
            raise ConfigError(f"{model.name}: this model takes no settings, got "
                              f"{', '.join(map(str, settings))}")
        return model()

    return build


LIVEREC_MODELS: dict[str, Callable[..., OfflineModel]] = {
    "pop": _no_settings(TrainingCountPop),
    "rep": _no_settings(HistoryCountRep),
}


def offline_models(compat: str = "liveq") -> dict[str, Callable[..., OfflineModel]]:
    """The model registry of a compat mode: liveq's, with LiveRec's POP and REP under
    `liverec` (the other models have no LiveRec definition and stay liveq's)."""
    if check_compat(compat) == "liverec":
        return OFFLINE_MODELS | LIVEREC_MODELS
    return dict(OFFLINE_MODELS)
