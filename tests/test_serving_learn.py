"""The loop on a real server (uvicorn on SQLite): a few hundred decisions with feedback
over HTTP, the join of that log, `liveq learn` from it, and `liveq models` register ->
promote (behind the gate) -> rollback, with the server then serving the promoted run."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from liveq.cli.main import main
from liveq.serving.db import open_log
from liveq.serving.join import JoinConfig, join_log
from liveq.serving.model import load_model
from liveq.serving.tables import models
from serving_support import Server, catalogue, train_tiny_run

VIEWERS, STEPS = 40, 8


def _draw(*parts: str) -> float:
    """A deterministic uniform draw in [0, 1) from the given strings."""
    return int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:12], 16) / 16 ** 12


def drive(client: httpx.Client) -> int:
    """VIEWERS sessions of STEPS decisions: a viewer clicks and watches some items (by a
    hash of viewer and streamer), and ends the session with session_end."""
    sent = 0
    for v in range(VIEWERS):
        viewer = f"viewer-{v}"
        for step in range(STEPS):
            r = client.post("/v1/recommend", json={"viewer_id": viewer, "k": 1})
            assert r.status_code == 200, r.text
            out = r.json()
            streamer = out["items"][0]["streamer_id"]
            events = []
            if _draw(viewer, streamer) < 0.5:
                events += [{"type": "click"}, {"type": "watch",
                                               "minutes": 1 + 9 * _draw(streamer, "m")}]
            if step == STEPS - 1:
                events.append({"type": "session_end"})
            for e in events:
                f = client.post("/v1/feedback", json={"decision_id": out["decision_id"],
                                                      "idempotency_key": uuid.uuid4().hex,
                                                      **e})
                assert f.status_code == 200, f.text
                sent += 1
    return sent


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("learn")
    run = train_tiny_run(root / "run")
    state = root / "state"
    srv = Server(run, state, None, "--epsilon", "0.3").start()
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        assert client.put("/v1/streamers/live", json=catalogue(40)).status_code == 200
        drive(client)
    srv.db = f"sqlite:///{state / 'log.db'}"
    srv.root, srv.run = root, run
    yield srv
    srv.stop()


def test_join_of_a_served_log_is_bit_identical_twice(served):
    engine = open_log(served.db)
    first, second = join_log(engine, JoinConfig()), join_log(engine, JoinConfig())
    engine.dispose()
    assert first.stats["sessions"] == VIEWERS and first.stats["steps"] == VIEWERS * STEPS
    assert first.decision_ids == second.decision_ids
    for a, b in zip(first.sessions, second.sessions, strict=True):
        assert a.tobytes() == b.tobytes()
    assert first.sessions.reward.sum() > 0
    np.testing.assert_allclose(first.sessions.behaviour.sum(axis=1), 1.0)


def test_learn_writes_a_run_that_the_service_loads(served, capsys):
    out = served.root / "cql-v2"
    assert main(["learn", "--db", served.db, "--out", str(out), "--learner", "cql",
                 "--gradient-steps", "60", "--seed", "3"]) == 0
    assert "on 320 transitions" in capsys.readouterr().out
    for name in ("config.yaml", "meta.json", "join.yaml", "learn.json",
                 "checkpoints/best.pt", "checkpoints/latest.pt"):
        assert (out / name).is_file(), name
    model = load_model(out)
    assert model.agent_name == "cql"
    again = served.root / "cql-v2-again"  # the same log, seed and steps: the same weights
    assert main(["learn", "--db", served.db, "--out", str(again), "--learner", "cql",
                 "--gradient-steps", "60", "--seed", "3"]) == 0
    assert load_model(again).version.split("-")[-1] == model.version.split("-")[-1]
    r = httpx.post(f"{served.url}/v1/admin/models", json={"run": str(out)},
                   headers={"X-API-Key": "test-admin-key"}, timeout=30)
    assert r.status_code == 201 and r.json()["version"] == model.version


def test_learn_trains_reinforce_and_the_service_loads_it(served, capsys):
    """REINFORCE learns from the joined log (one-step returns, learnt beta)."""
    out = served.root / "reinforce-v2"
    assert main(["learn", "--db", served.db, "--out", str(out), "--learner", "reinforce",
                 "--gradient-steps", "20", "--seed", "3"]) == 0
    assert "reinforce on 320 transitions" in capsys.readouterr().out
    assert load_model(out).agent_name == "reinforce"


@pytest.mark.parametrize("args, message", [
    (["--learner", "linucb"], "cannot learn from a log"),
    (["--learner", "nope"], "unknown agent 'nope'"),
    (["--min-decisions", "100000"], "learning needs at least 100000"),
])
def test_learn_refuses_with_one_line(served, capsys, tmp_path, args, message):
    assert main(["learn", "--db", served.db, "--out", str(tmp_path / "out"), *args]) == 2
    assert message in capsys.readouterr().err


def test_learn_refuses_an_existing_folder_and_an_empty_log(served, capsys, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    assert main(["learn", "--db", served.db, "--out", str(tmp_path / "taken")]) == 2
    assert "already exists" in capsys.readouterr().err
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["learn", "--db", empty, "--out", str(tmp_path / "o"),
                 "--config", "livestream_small"]) == 2
    assert "0 usable decisions" in capsys.readouterr().err


def _gate(db: str, version: str) -> dict:
    engine = open_log(db)
    with engine.connect() as conn:
        row = conn.execute(select(models.c.gate).where(models.c.version == version)).one()
    engine.dispose()
    return row.gate


def test_promote_refused_on_a_small_log_then_full_path(served, capsys):
    out = served.root / "bandit-v2"
    assert main(["learn", "--db", served.db, "--out", str(out), "--learner", "bandit",
                 "--gradient-steps", "40"]) == 0
    assert main(["models", "register", str(out), "--db", served.db]) == 0
    version = load_model(out).version
    old = httpx.post(f"{served.url}/v1/recommend", json={"viewer_id": "x"}).json()
    capsys.readouterr()
    # 40 sessions are too few for the default 200
    assert main(["models", "promote", str(out), "--db", served.db, "--bootstrap", "20"]) == 2
    captured = capsys.readouterr()
    assert "refuse: not enough data" in captured.err
    assert _gate(served.db, version)["verdict"] == "refuse: not enough data"
    # a margin no candidate clears: judged, refused, every estimator printed
    assert main(["models", "promote", version, "--db", served.db, "--min-sessions", "10",
                 "--bootstrap", "20", "--margin", "1000"]) == 2
    captured = capsys.readouterr()
    assert "refuse: candidate not better" in captured.err
    assert "fqe" in captured.out and "snips" in captured.out and "effective" in captured.out
    # a margin every candidate clears: promoted, and the server serves it
    assert main(["models", "promote", version, "--db", served.db, "--min-sessions", "10",
                 "--bootstrap", "20", "--margin", "-1000"]) == 0
    assert _gate(served.db, version)["verdict"] == "promote"
    new = httpx.post(f"{served.url}/v1/recommend", json={"viewer_id": "x"}).json()
    assert new["policy_version"] == version != old["policy_version"]
    assert main(["models", "list", "--db", served.db]) == 0
    listing = capsys.readouterr().out
    assert version in listing and "promote" in listing
    assert main(["models", "rollback", "--db", served.db]) == 0
    back = httpx.post(f"{served.url}/v1/recommend", json={"viewer_id": "x"}).json()
    assert back["policy_version"] == old["policy_version"]


def test_migration_0002_adds_the_gate_column_to_an_existing_log(tmp_path):
    from alembic import command
    from alembic.config import Config

    from liveq.serving.db import MIGRATIONS, make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.exec_driver_sql("INSERT INTO models (version, run_path, status, created_at) "
                             "VALUES ('v1', '/r', 'live', 1.0)")
        conn.commit()
    engine.dispose()
    engine = open_log(url)
    with engine.connect() as conn:
        row = conn.execute(select(models.c.version, models.c.gate)).one()
    engine.dispose()
    assert (row.version, row.gate) == ("v1", None)
