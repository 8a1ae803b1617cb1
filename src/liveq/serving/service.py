"""The service's work behind each route: recommend, feedback, the catalogue, models.

`Service` holds the engine, the settings and a per-process cache of loaded models; all
shared state lives in the database, so any number of worker processes can run it.
A feedback event is answered only after the transaction that holds it has committed.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timezone
from typing import Any

import numpy as np
from sqlalchemy import Engine

from liveq.core.errors import LiveqError, RequestError
from liveq.serving import store
from liveq.serving.catalogue_cache import CatalogueCache
from liveq.serving.db import reading
from liveq.serving.decision_log import log_decision, log_decisions
from liveq.serving.event_log import log_events
from liveq.serving.explain import explain
from liveq.serving.group_commit import GroupCommit
from liveq.serving.metrics import Metrics
from liveq.serving.model import ServedModel, load_model, model_version
from liveq.serving.policy_log import arm_of, decide, finite_or_none, log_draw
from liveq.serving.routing import Routing
from liveq.serving.schemas import Catalogue, Feedback, FeedbackBatch, RecommendRequest
from liveq.serving.settings import ServeConfig
from liveq.serving.viewers import (
    ViewerState,
    end_session,
    record_click,
    record_follow,
    record_watch,
    start_session_if_due,
)

VIEWER_EVENTS = ("click", "watch", "follow", "session_end")
"""The event types that change the viewer's logged state."""
DECIDE_THREADS = 4
"""Threads per process that make decisions (reads and scoring; the writes are grouped)."""


class Service:
    def __init__(self, engine: Engine, config: ServeConfig, metrics: Metrics):
        self.engine, self.config, self.metrics = engine, config, metrics
        self._models: dict[str, ServedModel] = {}
        self._catalogue = CatalogueCache()
        self._routing = Routing()
        self._writes = GroupCommit(engine, on_commit=metrics.committed)
        self._threads = ThreadPoolExecutor(DECIDE_THREADS, thread_name_prefix="liveq-decide")
        self._myopic = load_model(config.myopic) if config.myopic else None
        self._warm()

    def _warm(self) -> None:
        """Load the live model and the split's models now, so a worker that answers
        /healthz answers /v1/recommend without a cold start."""
        with self.engine.connect() as conn:
            rows = [store.get_model(conn, arm["model"]) for arm in store.current_split(conn)]
            live = store.live_model(conn)
            conn.rollback()
        for row in rows + ([live] if live else []):
            self.model(row["version"], row["run_path"])

    def model(self, version: str, run_path: str) -> ServedModel:
        if version not in self._models:
            self._models[version] = load_model(run_path)
        return self._models[version]

    def _choose_model(self, conn, viewer_id: str) -> tuple[ServedModel, str]:
        live, arms = self._routing.lookup(conn)
        arm = arm_of(viewer_id, arms)
        if arm is not None:
            return self._model_of(conn, arm["model"]), arm["name"]
        if live is None:
            raise RequestError(503, "no live model: register and promote one")
        return self._model_of(conn, live), "live"

    # --- catalogue ---------------------------------------------------------------------
    def put_catalogue(self, body: Catalogue) -> dict[str, int]:
        at = store.now()
        seen = [s.streamer_id for s in body.streamers]
        if len(set(seen)) != len(seen):
            raise RequestError(422, "streamers: a streamer_id appears twice")
        with self.engine.begin() as conn:
            self._check_widths(conn, body)
            before = set(store.live_catalogue(conn, at).ids)
            for s in body.streamers:
                store.upsert_streamer(conn, {
                    "streamer_id": s.streamer_id, "topic": s.topic, "viewers": s.viewers,
                    "live": True, "live_since": at - 60 * s.minutes_live,
                    "first_seen": at - 60 * s.age_minutes, "impressions": s.impressions,
                    "clicks": s.clicks, "watch_sum": s.watch_share, "updated_at": at})
            gone = before - set(seen)
            for streamer_id in gone:
                store.set_live(conn, streamer_id, False, at)
        return {"live": len(seen), "went_offline": len(gone)}

    def _check_widths(self, conn, body: Catalogue) -> None:
        """Every topic vector must have the live model's width (one width for all)."""
        live = store.live_model(conn)
        width = (self.model(live["version"], live["run_path"]).settings.topic_dim
                 if live else len(body.streamers[0].topic) if body.streamers else 0)
        for s in body.streamers:
            if len(s.topic) != width:
                raise RequestError(422, f"streamers: {s.streamer_id}.topic has {len(s.topic)} "
                                        f"entries; the live model's topics have {width}")

    def set_live(self, streamer_id: str, live: bool, viewers: float | None) -> None:
        with self.engine.begin() as conn:
            store.set_live(conn, streamer_id, live, store.now(), viewers)

    # --- recommend ---------------------------------------------------------------------
    async def recommend(self, body: RecommendRequest) -> dict[str, Any]:
        """The decision is made in one of a few threads (the forward pass, numpy and the
        database reads release the interpreter lock; a small pool, since more threads
        only contend for it), then awaited on the event loop while the writer thread
        commits its row: no thread is held through the commit's fsync."""
        loop = asyncio.get_running_loop()
        answer, row = await loop.run_in_executor(self._threads, self._decide, body)
        if row is None:  # the request key's first answer
            return answer
        item = (body.viewer_id, row, self._models[row["model_version"]].settings)
        first = await asyncio.wrap_future(
            self._writes.submit(lambda conn: self._log_decision(conn, item))
            if body.idempotency_key is not None else
            self._writes.submit_merged(self._log_decisions, item))
        if first is not None:  # a concurrent request with the same key was first
            return self._repeat_decision(first, body)
        self.metrics.decision(answer["arm"])
        return answer

    def _decide(self, body: RecommendRequest) -> tuple[dict[str, Any], dict | None]:
        """The answer and the decision's log row (no row: the key's first answer)."""
        at = store.now()
        clock = _clock(body, at)
        decision_id = uuid.uuid4().hex
        with reading(self.engine) as conn:
            first = (None if body.idempotency_key is None
                     else store.decision_by_key(conn, body.idempotency_key))
            if first is not None:
                return self._repeat_decision(first, body), None
            model, arm = self._choose_model(conn, body.viewer_id)
            catalogue = self._catalogue.live(conn, at)
            stored = store.viewer_state(conn, body.viewer_id)
            conn.rollback()
        if body.candidates is not None:
            unknown = [c for c in body.candidates if c not in catalogue.index]
            catalogue = catalogue.subset(body.candidates)
            if unknown and not catalogue.ids:
                raise RequestError(404, f"candidates: none is a live streamer (unknown or "
                                        f"offline: {unknown[:3]})")
        settings = model.settings
        self._check_topics(catalogue, settings.topic_dim)
        state = (ViewerState.new(settings) if stored is None
                 else ViewerState.from_json(stored, settings))
        start_session_if_due(state, at, self.config.session_gap_minutes)
        fields = decide(model, catalogue, state, body.k, self.config.exploration,
                        decision_id, clock)
        answer = {"decision_id": decision_id, "items": _items(fields),
                  "slate_probability": fields["slate_probability"],
                  "policy_version": model.version, "arm": arm,
                  "exploration": self.config.exploration}
        logged = log_draw(decision_id) < self.config.log_sample
        row = self._decision_row(decision_id, body, at, clock, state, model, arm, fields,
                                 logged)
        if body.idempotency_key is not None:
            row.update(request_key=body.idempotency_key, response=answer)
        return answer, row

    @staticmethod
    def _repeat_decision(first: dict[str, Any], body: RecommendRequest) -> dict[str, Any]:
        """The first answer to a request key, refused when another viewer used the key."""
        if first["viewer_id"] != body.viewer_id:
            raise RequestError(409, f"idempotency_key '{body.idempotency_key}' was used for "
                                    f"a recommendation to another viewer "
                                    f"('{first['viewer_id']}')")
        return first["response"]

    @staticmethod
    def _check_topics(catalogue, topic_dim: int) -> None:
        if not catalogue.ids:
            catalogue.topic = np.zeros((0, topic_dim), np.float32)
        elif catalogue.topic.shape[1] != topic_dim:
            raise RequestError(409, f"the live catalogue's topic vectors have "
                                    f"{catalogue.topic.shape[1]} entries; the model uses "
                                    f"{topic_dim}")

    def _decision_row(self, decision_id, body, at, clock, state, model, arm, fields,
                      logged) -> dict[str, Any]:
        full = {k: fields[k] for k in ("features", "scores", "probabilities")}
        if not logged:
            full = dict.fromkeys(full)
        context = body.context.model_dump(mode="json") if body.context else {}
        return {"decision_id": decision_id, "viewer_id": body.viewer_id, "created_at": at,
                "request_time": clock, "context": context, "session_id": state.session_id,
                "session_step": state.session_steps, "model_version": model.version,
                "arm": arm, "exploration": self.config.exploration, "k": body.k,
                "candidates": fields["candidates"], "logged": logged,
                "log_probability": self.config.log_sample, **full,
                "slate": fields["slate"], "slate_positions": fields["slate_positions"],
                "slate_probability": fields["slate_probability"],
                "item_probabilities": fields["item_probabilities"]}

    def _log_decisions(self, conn, items: list) -> list:
        """The merge of decisions without a request key (`decision_log`)."""
        return log_decisions(conn, items, self.config.session_gap_minutes)

    def _log_decision(self, conn, item) -> dict[str, Any] | None:
        return log_decision(conn, item, self.config.session_gap_minutes)

    # --- feedback ----------------------------------------------------------------------
    async def feedback(self, body: Feedback) -> dict[str, Any]:
        """Awaited on the event loop: the request needs no thread of its own while the
        writer thread logs and commits its event, with the other single events waiting
        then in one `log_events` call (`GroupCommit.submit_merged`)."""
        answer, counted = await asyncio.wrap_future(
            self._writes.submit_merged(self._log_single_events, (body, store.now())))
        value = answer.pop("value", None)
        if counted is not None:
            self.metrics.event(counted, body.type, value)
        return answer

    def _log_single_events(self, conn, items: list[tuple[Feedback, float]]) -> list:
        """The merge of single events: each answered as it would be alone, in order."""
        return log_events(conn, [body for body, _ in items], [at for _, at in items],
                          self._apply)

    async def feedback_batch(self, body: FeedbackBatch) -> dict[str, Any]:
        """Several events in one write: one transaction, one answer after its commit
        (`liveq.serving.event_log`: a refused event gets the 4xx it would get alone, in
        its place, and writes nothing; the others are logged)."""
        at = store.now()
        done = await asyncio.wrap_future(self._writes.submit(
            lambda conn: log_events(conn, body.events, at, self._apply)))
        results = []
        for event, outcome in zip(body.events, done, strict=True):
            if isinstance(outcome, RequestError):
                results.append({"status": outcome.status, "detail": str(outcome)})
                continue
            answer, counted = outcome
            value = answer.pop("value", None)
            if counted is not None:
                self.metrics.event(counted, event.type, value)
            results.append({"status": 200, **answer})
        return {"results": results}

    def _apply(self, conn, decision, body: Feedback, streamer: str | None, at: float) -> None:
        """Update the viewer's state and the streamer's counters from an event that
        changes the viewer (impressions are counted by `log_events` in bulk; gifts and
        comments change neither, so their transaction never locks the viewer's row)."""
        if body.type not in VIEWER_EVENTS:
            return
        settings = self._model_of(conn, decision["model_version"]).settings
        fresh = ViewerState.new(settings).to_json()
        state = ViewerState.from_json(store.lock_viewer(conn, decision["viewer_id"], at,
                                                        fresh), settings)
        if body.type == "click":
            record_click(state, at)
            store.add_engagement(conn, streamer, clicks=1.0)
        elif body.type == "watch":
            topic = store.streamer_topics(conn, [streamer]).get(streamer)
            if topic is not None and len(topic) == settings.topic_dim:
                record_watch(state, settings, streamer, topic, body.minutes, at)
            share = min(body.minutes / settings.step_minutes, 1.0)
            store.add_engagement(conn, streamer, watch=share)
        elif body.type == "follow":
            record_follow(state, streamer, at)
        else:
            end_session(state)
        store.save_viewer(conn, decision["viewer_id"], state.to_json(), at)

    def _model_of(self, conn, version: str) -> ServedModel:
        """The model of `version` (its row is read only the first time: a version names
        one checkpoint)."""
        if version in self._models:
            return self._models[version]
        row = store.get_model(conn, version)
        return self.model(row["version"], row["run_path"])

    # --- explain -----------------------------------------------------------------------
    def explain(self, decision_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            decision = store.get_decision(conn, decision_id)
            model = self._model_of(conn, decision["model_version"])
            conn.rollback()
        if not decision["logged"]:
            raise RequestError(409, f"decision {decision_id} was not logged in full "
                                    f"(--log-sample {decision['log_probability']:g}); it "
                                    "cannot be explained")
        return explain(decision, model, self._myopic)

    # --- admin -------------------------------------------------------------------------
    def register(self, run: str) -> dict[str, Any]:
        try:
            model = load_model(run)
        except LiveqError as exc:
            raise RequestError(422, f"run: {exc}") from None
        self._models[model.version] = model
        with self.engine.begin() as conn:
            return store.register_model(conn, model.version, model.run_path, store.now())

    def promote(self, version: str) -> dict[str, Any]:
        with self.engine.begin() as conn:
            return store.promote(conn, version, store.now())

    def rollback(self) -> dict[str, Any]:
        with self.engine.begin() as conn:
            return store.rollback(conn, store.now())

    def models(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return store.list_models(conn)

    def split(self, arms: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            if arms is not None:
                names = [a["name"] for a in arms]
                if len(set(names)) != len(names):
                    raise RequestError(422, "arms: an arm name appears twice")
                total = sum(a["share"] for a in arms)
                if arms and abs(total - 1.0) > 1e-6:
                    raise RequestError(422, f"arms: the shares sum to {total:g}, not 1")
                for arm in arms:
                    store.get_model(conn, arm["model"])
                store.set_split(conn, arms, store.now())
            return store.current_split(conn)


def _clock(body: RecommendRequest, at: float) -> float:
    """The features' clock: the context's time (UTC when it names no zone), else now."""
    if body.context is None or body.context.time is None:
        return at
    when = body.context.time
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _items(fields: dict[str, Any]) -> list[dict[str, Any]]:
    """The shown items of a decision, best first, with score and rank probability."""
    probs = fields["item_probabilities"] or [None] * len(fields["slate"])
    return [{"streamer_id": streamer, "rank": rank,
             "score": finite_or_none(fields["scores"][position]),
             "probability": probs[rank]}
            for rank, (streamer, position) in enumerate(zip(fields["slate"],
                                                            fields["slate_positions"],
                                                            strict=True))]


def startup_model(engine: Engine, run: str) -> dict[str, Any]:
    """Register `run` (checked by loading it) and make it live when no model is live."""
    model = load_model(run)
    version = model_version(run)
    with engine.begin() as conn:
        row = store.register_model(conn, version, model.run_path, store.now())
        if store.live_model(conn) is None:
            row = store.promote(conn, version, store.now())
    return row
