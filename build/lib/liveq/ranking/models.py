"""Offline ranking models by name: POP, REP, BPR and the logged-Q learners.

Every entry of `OFFLINE_MODELS` builds a fresh `OfflineModel`; the heavy ones (torch,
the logged-Q learners of `liveq.ranking.logq`) are imported only when built.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from liveq.core.config import ConfigError, from_dict
from liveq.data.log import InteractionLog
from liveq.ranking.queries import OfflineModel, RankingQueries


class PopularNow:
    """POP: candidates ranked by how many other users watch them at the target's step
    (`cand_viewers`). Needs no training. LiveRec's POP counts training interactions
    instead; "popular now" is the live-streaming analogue a platform can compute."""

    name = "pop"

    def fit(self, train: InteractionLog, seed: int) -> None:
        """Nothing to learn: the score is read from the query."""

    def score(self, queries: RankingQueries) -> np.ndarray:
        return queries.cand_viewers.astype(np.float64)


def history_counts(queries: RankingQueries) -> np.ndarray:
    """`(total,)` how many times each candidate appears in its query's history."""
    n, _ = queries.history.shape
    width = int(max(queries.cand_item.max(initial=-1), queries.history.max(initial=-1))) + 1
    present = queries.history >= 0
    if not present.any():
        return np.zeros(len(queries.cand_item), dtype=np.int64)
    keys = (np.arange(n, dtype=np.int64)[:, None] * width + queries.history)[present]
    keys, counts = np.unique(keys, return_counts=True)
    wanted = queries.query_of_candidate() * width + queries.cand_item
    where = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[where] == wanted, counts[where], 0)


class RepeatFavourite:
    """REP: candidates ranked by how often the user watched them in the query's history
    (the up to 16 interactions before the target, counted by rows as in LiveRec's REP);
    equal counts, unseen streamers included, fall back to POP order (`cand_viewers`).

    The score is `count + viewers / (max viewers + 1)`: the fraction is below 1, so the
    count decides and viewers only order equal counts.
    """

    name = "rep"

    def fit(self, train: InteractionLog, seed: int) -> None:
        """Nothing to learn: the history comes with each query."""

    def score(self, queries: RankingQueries) -> np.ndarray:
        viewers = queries.cand_viewers.astype(np.float64)
        return history_counts(queries) + viewers / (viewers.max(initial=0.0) + 1.0)


def _no_settings(model: Callable[[], OfflineModel]) -> Callable[..., OfflineModel]:
    def build(settings: dict | None = None) -> OfflineModel:
        if settings:
            raise ConfigError(f"{model.name}: this model takes no settings, got "
                              f"{', '.join(map(str, settings))}")
        return model()

    return build


def _bpr(settings: dict | None = None) -> OfflineModel:
    from liveq.ranking.bpr import BPRConfig, BPRModel

    return BPRModel(from_dict(BPRConfig, settings, "bpr"))


def _logged_q(objective: str, settings: dict | None = None) -> OfflineModel:
    from liveq.ranking.logq import LoggedQConfig, LoggedQModel

    return LoggedQModel(objective, from_dict(LoggedQConfig, settings, objective))


# name -> build(settings: dict | None); settings are the model's config fields
# (BPRConfig, LoggedQConfig), e.g. from `liveq eval-offline --model-config`.
OFFLINE_MODELS: dict[str, Callable[..., OfflineModel]] = {
    "pop": _no_settings(PopularNow),
    "rep": _no_settings(RepeatFavourite),
    "bpr": _bpr,
    "dqn": partial(_logged_q, "dqn"),
    "bc": partial(_logged_q, "bc"),
    "bandit": partial(_logged_q, "bandit"),
}
