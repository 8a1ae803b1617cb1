"""Slates (k = 5) end to end on a real server (uvicorn on SQLite): `liveq traffic` on the
simulator's slate world against a served SlateQ run, the join of that log (every click
credited to the rank the viewer opened), `liveq learn --learner slateq` from it, and the
slate gate judging the candidate against the live model on the same log; feedback naming
an item the list did not show is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import numpy as np
import pytest

from liveq.cli.main import main
from liveq.serving.db import open_log
from liveq.serving.join import JoinConfig, join_log
from liveq.serving.model import load_model
from serving_support import Server, env


@pytest.fixture(scope="module")
def slate_log(tmp_path_factory):
    """A tiny SlateQ run served with 20% exploration to 0.15 simulated days of traffic."""
    root = tmp_path_factory.mktemp("slates")
    subprocess.run([sys.executable, "-m", "liveq.cli.main", "train", "--config",
                    "livestream_slate", "--out", str(root / "run"), "--steps", "600",
                    "--no-progress"], check=True, env=env(), capture_output=True)
    server = Server(root / "run", root / "state", None, "--epsilon", "0.2").start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "liveq.cli.main", "traffic", "--url", server.url,
             "--config", "livestream_slate", "--days", "0.15", "--sessions", "8",
             "--seed", "1", "--truth", str(root / "truth.json")],
            env=env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        probe = _probe(server.url)
    finally:
        server.stop()
    return root, f"sqlite:///{root / 'state' / 'log.db'}", probe


def _probe(url: str) -> str:
    """One more list of 5; feedback naming an item it did not show is refused (422), a
    click on its third item is taken. Returns the decision id."""
    with httpx.Client(base_url=url, timeout=30) as client:
        out = client.post("/v1/recommend", json={"viewer_id": "probe", "k": 5}).json()
        shown = [item["streamer_id"] for item in out["items"]]
        click = {"decision_id": out["decision_id"], "type": "click"}
        bad = client.post("/v1/feedback", json={**click, "idempotency_key": "probe-bad",
                                                 "streamer_id": "nobody"})
        assert bad.status_code == 422 and "'nobody' was not shown" in bad.text
        good = client.post("/v1/feedback", json={**click, "idempotency_key": "probe-click",
                                                  "streamer_id": shown[2]})
        assert good.status_code == 200, good.text
    return out["decision_id"]


def test_the_join_credits_each_click_to_the_rank_opened(slate_log):
    root, db, probe = slate_log
    truth = json.loads((root / "truth.json").read_text())
    engine = open_log(db)
    everything = JoinConfig(drop_open_sessions=False)
    first, again = join_log(engine, everything), join_log(engine, everything)
    engine.dispose()
    assert first.stats["slate_size"] == 5 and first.stats["steps"] == truth["decisions"] + 1
    for a, b in zip(first.slate, again.slate, strict=True):
        assert a.tobytes() == b.tobytes()
    opened = first.slate.clicked_rank
    assert opened[first.decision_ids.index(probe)] == 2
    assert int((opened >= 0).sum()) == truth["clicks"] + 1 > 1
    assert (opened > 0).any()  # viewers open lower ranks too
    shown = first.slate.slates[np.arange(len(opened)), np.maximum(opened, 0)]
    assert (shown[opened >= 0] >= 0).all()  # always an item the list showed
    decided = first.sessions.mask.any(axis=1)  # lists drawn with 20% exploration
    assert (first.slate.probability[decided] < 1).all() and (first.slate.probability > 0).all()


def test_learn_from_slates_takes_slateq_and_refuses_the_rest(slate_log, capsys, tmp_path):
    _, db, _ = slate_log
    assert main(["learn", "--db", db, "--out", str(tmp_path / "cql"), "--learner", "cql",
                 "--gradient-steps", "5"]) == 2
    assert "choose one of ['slateq']" in capsys.readouterr().err
    out = tmp_path / "v2"
    assert main(["learn", "--db", db, "--out", str(out), "--learner", "slateq",
                 "--gradient-steps", "20", "--min-decisions", "50", "--seed", "3"]) == 0
    assert "slateq on" in capsys.readouterr().out
    model = load_model(out)
    assert model.agent_name == "slateq"
    stats = json.loads((out / "learn.json").read_text())["train"]
    assert 0.0 < stats["click_rate_last"] < 1.0  # it fit the logged opened ranks

    # the gate on the same log: the live model's slate probabilities reproduce the
    # logged ones exactly (every importance weight 1: effective sessions = sessions)
    code = main(["models", "promote", str(out), "--db", db, "--min-sessions", "10",
                 "--bootstrap", "10", "--decide-by", "fqe,wdr"])
    printed = capsys.readouterr().out
    assert code in (0, 2)
    head = next(line for line in printed.splitlines() if "effective sessions" in line)
    sessions = int(head.split()[0])
    assert f"live {sessions}.0" in head and sessions >= 10
    for name in ("fqe", "pdwis", "wdr"):
        assert any(line.startswith(name) for line in printed.splitlines())
    assert "verdict: " in printed
