"""`liveq traffic` against a real server (uvicorn on a loopback port, SQLite), and the
simulator core's `step_ids` that lets a service choose the slates."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from liveq.core.errors import InvalidActionError
from liveq.sim.config import LiveStreamConfig
from liveq.sim.core import LiveStreamCore
from serving_support import Server, env, train_tiny_run

DAYS = "0.05"  # 8 ten-minute steps of 16 sessions: seconds


def _core(seed: int = 3) -> LiveStreamCore:
    core = LiveStreamCore(LiveStreamConfig(n_streamers=120, n_candidates=8, slate_size=2,
                                           followed_slots=2, trending_slots=2), 6)
    core.reset(seed)
    return core


def test_step_ids_is_step_when_given_the_same_slates():
    """Stepping with the ids the positions name gives the same world, bit for bit."""
    by_position, by_id = _core(), _core()
    rng = np.random.default_rng(0)
    for _ in range(30):
        positions = np.stack([rng.choice(np.flatnonzero(m), 2, replace=False)
                              for m in by_position.mask])
        rows = np.arange(by_position.n)[:, None]
        ids = by_position.cand_ids[rows, positions]
        ids[by_position.needs_reset] = -1
        a, b = by_position.step(positions), by_id.step_ids(ids)
        np.testing.assert_array_equal(a[0]["candidates"], b[0]["candidates"])
        for x, y in zip(a[1:4], b[1:4], strict=True):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(a[4]["shown_ids"], b[4]["shown_ids"])
    assert by_position.rng.bit_generator.state == by_id.rng.bit_generator.state


def test_step_ids_refuses_offline_repeated_and_misshapen_ids():
    core = _core()
    offline = int(np.flatnonzero(~core.streamers.live)[0])
    live = np.flatnonzero(core.streamers.live)
    ids = np.full((core.n, 2), -1)
    ids[2, 1] = offline
    with pytest.raises(InvalidActionError, match=f"session 2, rank 1: streamer {offline}"):
        core.step_ids(ids)
    ids[2] = [live[0], live[0]]
    with pytest.raises(InvalidActionError, match="repeated"):
        core.step_ids(ids)
    with pytest.raises(InvalidActionError, match="shape"):
        core.step_ids(np.zeros((core.n, 3), np.int64))
    ids[2] = [live[0], -1]
    assert core.step_ids(ids)[4]["shown_ids"][2].tolist() == [int(live[0]), -1]


def test_live_streamers_are_the_live_slots_with_their_logged_state():
    core = _core()
    state = core.live_streamers()
    live = np.flatnonzero(core.streamers.live)
    np.testing.assert_array_equal(state["id"], live)
    np.testing.assert_array_equal(state["viewers"], core.streamers.viewers[live])
    np.testing.assert_array_equal(state["impressions"], core.streamers.impressions[live])
    assert (state["minutes_live"] >= 0).all() and (state["age_minutes"] > 0).all()


# ---------------------------------------------------------------- against a real server
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("traffic") / "run")


def _traffic(url: str, truth: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "liveq.cli.main", "traffic", "--url", url, "--days", DAYS,
         "--seed", "5", "--truth", str(truth), "--retry-for", "60"],
        env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    return out


def _figure(out: str, label: str) -> str:
    line = next(ln for ln in out.splitlines() if ln.strip().startswith(label))
    return line.split()[len(label.split())]


def _log(state_dir: Path) -> tuple[list[tuple], dict[str, int]]:
    with sqlite3.connect(state_dir / "log.db") as db:
        slates = db.execute("SELECT viewer_id, session_step, slate FROM decisions "
                            "ORDER BY viewer_id, created_at").fetchall()
        events = dict(db.execute("SELECT type, COUNT(*) FROM events GROUP BY type"))
    return slates, events


def test_traffic_logs_its_decisions_and_events_and_replays(tiny_run, tmp_path):
    first = Server(tiny_run, tmp_path / "a", None, "--epsilon", "0").start()
    try:
        out = _finish(_traffic(first.url, tmp_path / "a.json"))
    finally:
        first.stop()
    truth = json.loads((tmp_path / "a.json").read_text())
    slates, events = _log(tmp_path / "a")
    # what the driver says it sent is what the service committed
    assert len(slates) == truth["decisions"] == int(_figure(out, "decisions")) > 0
    assert events == truth["events_by_type"]
    assert sum(events.values()) == truth["events"] == int(_figure(out, "events"))
    assert events["impression"] == truth["decisions"]
    assert events["click"] == truth["clicks"] == int(_figure(out, "clicks"))
    # the truth JSON holds the sessions behind the printed summary
    returns = [s["return"] for s in truth["session_returns"]]
    assert len(returns) == truth["sessions"] == int(_figure(out, "sessions finished")) > 0
    assert np.mean(returns) == pytest.approx(truth["return_mean"])
    assert f"{truth['return_mean']:.4f}" == _figure(out, "return / session")
    assert sum(s["clicks"] for s in truth["session_returns"]) <= truth["clicks"]

    # the same seed against a fresh service that comes up only after the driver started
    # (its first requests are retried): the same decisions, the same true returns
    second = Server(tiny_run, tmp_path / "b", None, "--epsilon", "0")
    proc = _traffic(second.url, tmp_path / "b.json")
    time.sleep(2.0)
    second.start()
    try:
        _finish(proc)
    finally:
        second.stop()
    again = json.loads((tmp_path / "b.json").read_text())
    assert again["retries"] > 0
    assert _log(tmp_path / "b") == (slates, events)
    assert again["session_returns"] == truth["session_returns"]


def test_true_returns_are_summarised_per_ab_arm_by_hand():
    from liveq.experiments.traffic import by_arm

    finished = [{"arm": "a", "return": 1.0}, {"arm": "b", "return": 4.0},
                {"arm": "a", "return": 3.0}]
    arms = by_arm(finished)
    assert list(arms) == ["a", "b"]
    assert arms["a"]["sessions"] == 2 and arms["a"]["return_mean"] == 2.0
    assert arms["b"]["sessions"] == 1 and arms["b"]["return_mean"] == 4.0
