"""From the live catalogue and a viewer's logged state to the model's observation.

`Catalogue` is the live streamers as the platform last reported them, with their logged
counters; `candidate_table` retrieves a viewer's candidates with the simulator's rule
(`liveq.features.retrieval`), and `observation` builds the `Dict` observation with the
features module's builders. Nothing here knows the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liveq.core.units import MINUTES_PER_DAY
from liveq.features.retrieval import retrieve
from liveq.features.streamer import (
    StreamerRecord,
    candidate_features,
    pair_features,
    streamer_tables,
)
from liveq.features.viewer import ViewerRecord, viewer_features
from liveq.serving.settings import FeatureSettings
from liveq.serving.viewers import ViewerState


@dataclass
class Catalogue:
    """The live streamers a decision may draw from, one row each."""

    ids: list[str]
    topic: np.ndarray  # (m, topic_dim) float32
    viewers: np.ndarray  # (m,) float32
    minutes_live: np.ndarray  # (m,)
    impressions: np.ndarray  # (m,) float64
    clicks: np.ndarray
    watch_sum: np.ndarray
    age_minutes: np.ndarray
    index: dict[str, int] | None = None
    """Row of each id; built from `ids` when not given (the catalogue cache passes the
    one it built, so a request does not rebuild a dict of 1,000 ids)."""

    def __post_init__(self) -> None:
        if self.index is None:
            self.index = {s: i for i, s in enumerate(self.ids)}

    def positions(self, names: list[str | None]) -> np.ndarray:
        """Rows of `names` (-1 for None or a streamer not live now)."""
        return np.asarray([self.index.get(n, -1) if n is not None else -1 for n in names],
                          np.int64)

    def subset(self, names: list[str]) -> Catalogue:
        """Only the streamers `names` (those live, in catalogue order)."""
        keep = sorted({self.index[n] for n in names if n in self.index})
        rows = np.asarray(keep, np.int64)
        return Catalogue([self.ids[i] for i in keep], self.topic[rows], self.viewers[rows],
                         self.minutes_live[rows], self.impressions[rows], self.clicks[rows],
                         self.watch_sum[rows], self.age_minutes[rows])


def candidate_table(settings: FeatureSettings, catalogue: Catalogue, state: ViewerState,
                    rng: np.random.Generator) -> np.ndarray:
    """`(K,)` catalogue rows of the viewer's candidates, -1 for empty slots (all of them
    when nobody is live)."""
    if not catalogue.ids:
        return np.full(settings.n_candidates, -1, np.int64)
    follows = catalogue.positions(state.follows)[None]
    live = np.ones(len(catalogue.ids), dtype=bool)
    return retrieve(live, catalogue.viewers, follows, n_candidates=settings.n_candidates,
                    followed_slots=settings.followed_slots,
                    trending_slots=settings.trending_slots, rng=rng)[0].astype(np.int64)


def observation(settings: FeatureSettings, catalogue: Catalogue, state: ViewerState,
                rows: np.ndarray, clock_seconds: float) -> dict[str, np.ndarray]:
    """The batch-of-one observation `{viewer, candidates, mask}` for candidate `rows`."""
    watching = catalogue.positions([state.watching])
    record = ViewerRecord(
        profile=np.asarray(state.profile, np.float32)[None],
        recent=np.asarray(state.recent, np.float32)[None],
        session_steps=np.array([state.session_steps]),
        session_minutes=np.array([state.session_minutes], np.float32),
        last_click=np.array([state.last_click]), last_watch=np.array([state.last_watch]),
        n_follows=np.array([sum(f is not None for f in state.follows)]),
        days_active=np.array([state.days_active]), watching_live=watching >= 0)
    clock = int(clock_seconds // 60) % MINUTES_PER_DAY
    viewer = viewer_features(record, clock, max_session_steps=settings.max_session_steps,
                             max_follows=settings.max_follows)
    streamers = StreamerRecord(catalogue.topic, catalogue.viewers, catalogue.minutes_live,
                               catalogue.impressions, catalogue.clicks, catalogue.watch_sum,
                               catalogue.age_minutes)
    topics, stats = streamer_tables(streamers, prior_strength=settings.cold_start_prior)
    ids = rows[None]
    hist = catalogue.positions(state.hist_ids)[None]
    pair = pair_features(ids, catalogue.positions(state.follows)[None], watching, hist,
                         np.asarray(state.hist_minutes, np.float32)[None])
    candidates = candidate_features(topics[ids], stats[ids], viewer, pair)
    return {"viewer": viewer, "candidates": candidates, "mask": (ids >= 0).astype(np.int8)}
