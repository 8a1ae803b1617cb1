"""Slates (k = 5) end to end on a real server (uvicorn on SQLite): `liveq traffic` on the
simulator's slate world against a served SlateQ run, the join of that log (every click
credited to the rank the viewer opened), `liveq learn --learner slateq` from it, and the
slate gate judging the candidate against the live model on the same log."""

from __future__ import annotations

import json
import subprocess
import sys

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
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    return root, f"sqlite:///{root / 'state' / 'log.db'}"


def test_the_join_credits_each_click_to_the_rank_opened(slate_log):
    root, db = slate_log
    truth = json.loads((root / "truth.json").read_text())
    engine = open_log(db)
    everything = JoinConfig(drop_open_sessions=False)
    first, again = join_log(engine, everything), join_log(engine, everything)
    engine.dispose()
    assert first.stats["slate_size"] == 5 and first.stats["steps"] == truth["decisions"]
    for a, b in zip(first.slate, again.slate, strict=True):
        assert a.tobytes() == b.tobytes()
    opened = first.slate.clicked_rank
    assert int((opened >= 0).sum()) == truth["clicks"] > 0
    assert (opened > 0).any()  # viewers open lower ranks too
    shown = first.slate.slates[np.arange(len(opened)), np.maximum(opened, 0)]
    assert (shown[opened >= 0] >= 0).all()  # always an item the list showed
    decided = first.sessions.mask.any(axis=1)  # lists drawn with 20% exploration
    assert (first.slate.probability[decided] < 1).all() and (first.slate.probability > 0).all()


def test_learn_from_slates_takes_slateq_and_refuses_the_rest(slate_log, capsys, tmp_path):
    _, db = slate_log
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
