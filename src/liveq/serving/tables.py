"""The decision log's tables (SQLAlchemy Core), as the migrations in `migrations/` create them.

Times are UNIX seconds (float) in every table, so SQLite and PostgreSQL store the same
numbers and the reward join can replay them exactly. JSON columns hold arrays as lists;
the decisions' features, scores and probabilities are packed binary read back as the same
lists (`liveq.serving.packed`).

* `models`: every registered model: `version`, `run_path`, `status` (live, candidate,
  retired), `created_at`, `promoted_at`, `retired_at`, `gate` (the promotion gate's last
  verdict on it, JSON; migration 0002).
* `splits`: the A/B split history; the newest row holds the split in force (`arms`:
  `[{"name", "model", "share"}]`, empty = all traffic to the live model).
* `streamers`: the catalogue the platform sent: topic, audience, live state, when the
  stream and the streamer were first seen, and the logged engagement counters.
* `viewers`: each viewer's logged state (`state`: profile, recent topics, session
  counters, follows, history; see `liveq.serving.viewers.ViewerState`).
* `decisions`: one row per recommendation; see `DECISION_COLUMNS`.
* `events`: feedback, one row per accepted idempotency key.
* `catalogue_version` (SQLite only, migration 0006; not in `metadata`): one row counting
  the changes of `streamers`, kept by triggers, for the catalogue cache's check.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from liveq.serving.packed import PackedArrays

metadata = MetaData()

ID = 128  # longest id (viewer, streamer, model version, idempotency key) accepted

models = Table(
    "models", metadata,
    Column("version", String(ID), primary_key=True),
    Column("run_path", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("promoted_at", Float),
    Column("retired_at", Float),
    Column("gate", JSON),
)

splits = Table(
    "splits", metadata,
    Column("split_id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("arms", JSON, nullable=False),
)

streamers = Table(
    "streamers", metadata,
    Column("streamer_id", String(ID), primary_key=True),
    Column("topic", JSON, nullable=False),
    Column("viewers", Float, nullable=False),
    Column("live", Boolean, nullable=False, index=True),
    Column("live_since", Float, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("impressions", Float, nullable=False),
    Column("clicks", Float, nullable=False),
    Column("watch_sum", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # covers the catalogue cache's fingerprint and counter reads (migration 0003)
    Index("ix_streamers_live_fingerprint", "live", "streamer_id", "updated_at",
          "impressions", "clicks", "watch_sum"),
)

viewers = Table(
    "viewers", metadata,
    Column("viewer_id", String(ID), primary_key=True),
    Column("state", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

DECISION_COLUMNS = {
    "decision_id": "32 hex digits; also seeds the decision's random draws",
    "viewer_id": "who asked",
    "created_at": "when the decision was made (server clock)",
    "request_time": "the context's time (the clock the features used)",
    "context": "the request's context ({time, device})",
    "session_id": "the viewer's session (decisions of one session form a trajectory)",
    "session_step": "recommendations served earlier in that session",
    "model_version": "the model that scored the candidates",
    "arm": "the A/B arm the viewer is assigned to",
    "exploration": "{kind: epsilon, epsilon} or {kind: softmax, temperature}",
    "k": "items shown",
    "candidates": "the full candidate table: K streamer ids, null for empty slots",
    "logged": "whether the full record (features, scores, distributions) was kept",
    "log_probability": "probability that a decision is logged in full (--log-sample)",
    "features": "{viewer: [...], candidates: [[...] x K], mask: [...]} the policy saw",
    "scores": "the model's score of every candidate (null on empty slots)",
    "probabilities": "serving policy's per-rank distribution over all K candidates "
                     "([[p_k] per rank]); null when too large to enumerate (softmax)",
    "slate": "the shown streamer ids, best first",
    "slate_positions": "their rows in the candidate table",
    "slate_probability": "exact probability of the shown ranked list",
    "item_probabilities": "each shown item's probability at its rank",
    "request_key": "the client's idempotency key of the request, if it sent one (unique)",
    "response": "the answer given, kept for requests with a key (a retry gets it again)",
}

decisions = Table(
    "decisions", metadata,
    Column("decision_id", String(32), primary_key=True),
    Column("viewer_id", String(ID), nullable=False, index=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("request_time", Float, nullable=False),
    Column("context", JSON, nullable=False),
    Column("session_id", String(32), nullable=False, index=True),
    Column("session_step", Integer, nullable=False),
    Column("model_version", String(ID), nullable=False),
    Column("arm", String(ID), nullable=False),
    Column("exploration", JSON, nullable=False),
    Column("k", Integer, nullable=False),
    Column("candidates", JSON, nullable=False),
    Column("logged", Boolean, nullable=False),
    Column("log_probability", Float, nullable=False),
    Column("features", PackedArrays),  # packed binary since migration 0005
    Column("scores", PackedArrays),
    Column("probabilities", PackedArrays),
    Column("slate", JSON, nullable=False),
    Column("slate_positions", JSON, nullable=False),
    Column("slate_probability", Float, nullable=False),
    Column("item_probabilities", JSON),
    Column("request_key", String(ID)),  # migration 0004
    Column("response", JSON),
    Index("uq_decisions_request_key", "request_key", unique=True),
)

events = Table(
    "events", metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(ID), nullable=False, unique=True),
    Column("decision_id", String(32), nullable=False, index=True),
    Column("viewer_id", String(ID), nullable=False),
    Column("streamer_id", String(ID)),
    Column("type", String(16), nullable=False),
    Column("value", Float),
    Column("created_at", Float, nullable=False, index=True),
    Column("response", JSON, nullable=False),
)

