"""The decision log's packed arrays (migration 0005): read back exactly as the JSON columns
gave them, old JSON rows still read after the migration (SQLite and PostgreSQL), and the
reward join of a log spanning the change identical bit for bit to the join of JSON rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from liveq.serving import store
from liveq.serving.db import MIGRATIONS, make_engine, open_log
from liveq.serving.join import JoinConfig, join_rows
from liveq.serving.packed import MAGIC, pack, unpack
from serving_support import new_postgres_database, postgres_url  # noqa: F401

K, VIEWER, CANDIDATE = 8, 22, 14


def _fields(seed: int) -> dict:
    """What `decide` hands the log: float32 features, an int8 mask, float64 scores (NaN
    where not finite) and per-rank probabilities."""
    rng = np.random.default_rng(seed)
    mask = (rng.random(K) < 0.8).astype(np.int8)
    mask[0] = 1
    scores = rng.normal(size=K)
    probs = rng.dirichlet(np.ones(K))[None] * mask
    return {"features": {"viewer": rng.normal(size=VIEWER).astype(np.float32),
                         "candidates": rng.normal(size=(K, CANDIDATE)).astype(np.float32),
                         "mask": mask},
            "scores": np.where(mask > 0, scores, np.nan),
            "probabilities": probs / probs.sum()}


def _as_json(fields: dict) -> dict:
    """The same fields as the JSON columns held them before migration 0005."""
    scores = [float(s) if np.isfinite(s) else None for s in fields["scores"]]
    return {"features": {k: v.tolist() for k, v in fields["features"].items()},
            "scores": scores, "probabilities": fields["probabilities"].tolist()}


def test_packed_values_read_back_as_the_json_columns_gave_them():
    for seed in range(5):
        fields = _fields(seed)
        old = json.loads(json.dumps(_as_json(fields)))
        for name in ("features", "scores", "probabilities"):
            data = pack(fields[name])
            assert data.startswith(MAGIC) and len(data) < len(json.dumps(old[name]))
            # the same numbers, types (int mask, float features, None) and order
            assert json.dumps(unpack(data)) == json.dumps(old[name])
            # JSON-shaped input (another writer's lists) reads back the same too
            assert json.dumps(unpack(pack(old[name]))) == json.dumps(old[name])


def _row(decision_id: str, at: float, fields: dict) -> dict:
    return {"decision_id": decision_id, "viewer_id": "v1", "created_at": at,
            "request_time": at, "context": {}, "session_id": "s1", "session_step": 0,
            "model_version": "m", "arm": "live",
            "exploration": {"kind": "epsilon", "epsilon": 0.1}, "k": 1,
            "candidates": [f"b{i}" for i in range(K)], "logged": True,
            "log_probability": 1.0, **fields, "slate": ["b0"], "slate_positions": [0],
            "slate_probability": float(fields["probabilities"][0][0]),
            "item_probabilities": [float(fields["probabilities"][0][0])]}


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request, tmp_path):
    """An empty database (a new one in the test cluster for PostgreSQL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    return new_postgres_database(request.getfixturevalue("postgres_url"))


def test_a_log_spanning_migration_0005_joins_bit_for_bit(fresh_url):
    """Decisions logged as JSON at 0004, the migration, then the same decisions logged
    packed: every array reads back equal, and the two halves join to the same bytes."""
    n = 6
    engine = make_engine(fresh_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    old_table = sa.table("decisions", *(sa.column(c) for c in _row("x", 0, _fields(0))),
                         *(sa.column(c, sa.JSON) for c in ("features", "scores",
                                                           "probabilities", "context",
                                                           "exploration", "candidates",
                                                           "slate", "slate_positions",
                                                           "item_probabilities")))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
        for i in range(n):
            conn.execute(old_table.insert().values(
                _row(f"old{i}", 60.0 * i, _as_json(_fields(i)))))
        conn.commit()
    engine.dispose()
    engine = open_log(fresh_url)  # migrates to the newest schema
    with engine.begin() as conn:
        for i in range(n):
            store.insert_decision(conn, _row(f"new{i}", 60.0 * i, _fields(i)))
    with engine.connect() as conn:
        rows = list(store.iter_decisions(conn))
        raw = conn.execute(sa.text("SELECT features FROM decisions WHERE decision_id = "
                                   "'new0'")).scalar()
    engine.dispose()
    assert bytes(raw).startswith(MAGIC)  # the new rows are packed, not JSON
    old = [r for r in rows if r["decision_id"].startswith("old")]
    new = [r for r in rows if r["decision_id"].startswith("new")]
    for a, b in zip(old, new, strict=True):
        for name in ("features", "scores", "probabilities"):
            assert json.dumps(a[name]) == json.dumps(b[name])
    joins = [join_rows([{**r, "decision_id": r["decision_id"][3:]} for r in half], [],
                       JoinConfig()).transitions() for half in (old, new)]
    for key in ("obs", "next_obs"):
        for part in ("viewer", "candidates", "mask"):
            assert joins[0][key][part].tobytes() == joins[1][key][part].tobytes()
    for key in joins[0]:
        if key not in ("obs", "next_obs"):
            assert np.asarray(joins[0][key]).tobytes() == np.asarray(joins[1][key]).tobytes()


def test_downgrade_writes_packed_rows_back_as_json(fresh_url):
    engine = open_log(fresh_url)
    fields = _fields(3)
    with engine.begin() as conn:
        store.insert_decision(conn, _row("d1", 1.0, fields))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
        conn.commit()
        raw = conn.execute(sa.text("SELECT features, scores, probabilities FROM decisions")
                           ).one()
    engine.dispose()
    want = json.loads(json.dumps(_as_json(fields)))
    got = [json.loads(v) if isinstance(v, str | bytes) else v for v in raw]
    assert got == [want["features"], want["scores"], want["probabilities"]]
