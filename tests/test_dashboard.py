"""The live dashboard: its figures against hand numbers and against the log, and the page
itself in headless Chromium against a real server (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import create_engine

from liveq.core.stats import mean_ci
from liveq.ope.gate import NOT_ENOUGH, GateConfig
from liveq.serving import dashboard, store
from liveq.serving.db import normalise_url
from liveq.serving.join import JoinConfig, decision_reward
from liveq.serving.promotion import promote_gated
from serving_support import (  # noqa: F401  (postgres_url is a fixture)
    API_KEY,
    Server,
    catalogue,
    postgres_url,
    train_tiny_run,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ADMIN = {"X-API-Key": API_KEY}
VIEWERS = 8
# feedback sent for the first decisions, and each one's reward by the join's defaults
FEEDBACK = [[("click", {}), ("watch", {"minutes": 6})],  # 1 + 0.05 * 6
            [("gift", {"value": 3})],  # 0.5 * 3
            [("click", {}), ("click", {})],  # counted once
            [("impression", {}), ("session_end", {})]]  # worth nothing
HAND_TOTAL = 1.3 + 1.5 + 1.0


# ------------------------------------------------------------------ hand numbers
def _event(kind: str, at: float, value: float | None = None) -> dict:
    return {"type": kind, "created_at": at, "value": value}


def test_reward_of_counts_is_the_join_rule():
    rule = JoinConfig()
    events = [_event("click", 1.0), _event("click", 2.0), _event("watch", 3.0, 8.0),
              _event("watch", 4.0, 2.0), _event("gift", 5.0, 4.0), _event("impression", 6.0),
              _event("session_end", 7.0)]
    counts = {"click": (2, 0.0), "watch": (2, 10.0), "gift": (1, 4.0), "impression": (1, 0.0),
              "session_end": (1, 0.0)}
    # click once (1) + 10 watch minutes (0.5) + a gift of 4 (2) + impression (0)
    assert dashboard.reward_of_counts(counts, rule) == pytest.approx(3.5)
    joined, _, _ = decision_reward({"created_at": 0.0}, events, rule)
    assert dashboard.reward_of_counts(counts, rule) == pytest.approx(joined)
    assert dashboard.reward_of_counts({}, JoinConfig(default_reward=-1.0)) == -1.0
    assert dashboard.reward_of_counts({"session_end": (1, 0.0)},
                                      JoinConfig(default_reward=-1.0)) == -1.0
    with pytest.raises(ValueError, match="watch"):
        dashboard.reward_of_counts({"watch": (1, 2.0)}, JoinConfig(count_once=["watch"]))


def test_arm_rewards_mean_and_student_interval():
    rows = [dashboard.Decided(d, arm, "v1")
            for d, arm in [("a", "control"), ("b", "control"), ("c", "control"),
                           ("d", "treatment")]]
    arms = dashboard.arm_rewards(rows, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 0.0})
    control, treatment = arms
    # mean 2, s = 1, t(0.975, 2) = 4.3027: 2 +- 4.3027 / sqrt(3)
    assert (control.arm, control.decisions, control.rewarded) == ("control", 3, 3)
    assert control.reward == pytest.approx(2.0)
    assert control.low == pytest.approx(2.0 - 4.302653 / math.sqrt(3), abs=1e-5)
    assert control.high == pytest.approx(2.0 + 4.302653 / math.sqrt(3), abs=1e-5)
    assert (treatment.decisions, treatment.rewarded, treatment.reward) == (1, 0, 0.0)
    values = [0.0, 1.3, 0.2, 2.5, 0.0, 0.7]
    assert dashboard.mean_interval(values) == pytest.approx(mean_ci(values))
    assert dashboard.mean_interval([]) == pytest.approx(mean_ci([]), nan_ok=True)


def test_gate_row_reads_a_stored_verdict_and_drops_non_finite_figures():
    gate = {"verdict": "promote", "reason": "all clear", "sessions": 412, "promote": True,
            "live": "small-1", "judged_at": 10.0,
            "difference": {"fqe": {"estimate": 0.5, "low": 0.1, "high": float("nan")}}}
    row = dashboard.gate_row("small-2", gate)
    assert (row.version, row.live, row.promoted, row.sessions) == ("small-2", "small-1",
                                                                   True, 412)
    assert row.difference == {"fqe": [0.5, 0.1, None]}
    odd = dashboard.gate_row("small-3", {"verdict": "promote", "live": 7, "judged_at": "x",
                                         "difference": {"fqe": "?"}})
    assert (odd.live, odd.judged_at, odd.sessions, odd.difference) == (None, None, None, {})


# ------------------------------------------------------------------ a served log
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny run and a copy of it (another version: the folder name differs)."""
    first = train_tiny_run(tmp_path_factory.mktemp("dashboard") / "run")
    second = first.parent / "run-b"
    shutil.copytree(first, second)
    return first, second


def _feedback(client: httpx.Client, decision_id: str, kind: str, **extra) -> None:
    r = client.post("/v1/feedback", json={"decision_id": decision_id, "type": kind,
                                          "idempotency_key": uuid.uuid4().hex, **extra})
    assert r.status_code == 200, r.text


def _traffic(client: httpx.Client, viewers: range) -> list[str]:
    out = []
    for viewer in viewers:
        r = client.post("/v1/recommend", json={"viewer_id": f"dash-viewer-{viewer}", "k": 1})
        assert r.status_code == 200, r.text
        out.append(r.json()["decision_id"])
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request, runs, tmp_path_factory):
    """A server with an A/B split of two versions, some traffic and feedback, and a gate
    verdict stored on the candidate."""
    state = tmp_path_factory.mktemp(f"dash-{request.param}") / "state"
    db = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    server = Server(runs[0], state, db).start()
    server.db = db or f"sqlite:///{state / 'log.db'}"
    engine = create_engine(normalise_url(server.db))
    with httpx.Client(base_url=server.url, timeout=30, headers=ADMIN) as client:
        assert client.put("/v1/streamers/live", json=catalogue(30)).status_code == 200
        live = client.get("/v1/admin/models").json()[0]["version"]
        candidate = client.post("/v1/admin/models", json={"run": str(runs[1])}).json()
        r = client.put("/v1/admin/split", json={"arms": [
            {"name": "control", "model": live, "share": 0.5},
            {"name": "treatment", "model": candidate["version"], "share": 0.5}]})
        assert r.status_code == 200, r.text
        ids = _traffic(client, range(VIEWERS))
        for decision_id, events in zip(ids, FEEDBACK, strict=False):
            for kind, extra in events:
                _feedback(client, decision_id, kind, **extra)
    verdict = promote_gated(engine, candidate["version"], GateConfig(), JoinConfig())
    assert verdict.verdict.verdict == NOT_ENOUGH
    server.engine, server.candidate = engine, candidate["version"]
    yield server
    engine.dispose()
    server.stop()


def expected(engine) -> dict:
    """The figures, computed from the log with the reward join's own per-event rule."""
    with engine.connect() as conn:
        rows = list(store.iter_decisions(conn))
        by_decision = defaultdict(list)
        for event in store.iter_events(conn):
            by_decision[event["decision_id"]].append(event)
        live = store.live_model(conn)["version"]
    arms = defaultdict(list)
    for row in rows:
        reward, _, _ = decision_reward(row, by_decision[row["decision_id"]], JoinConfig())
        arms[(row["arm"], row["model_version"])].append(reward)
    return {"decisions": len(rows), "live": live, "newest": rows[-1]["decision_id"],
            "arms": {key: (len(v), *mean_ci(v)) for key, v in arms.items()}}


def test_dashboard_json_needs_the_admin_key(served):
    assert httpx.get(f"{served.url}/v1/admin/dashboard").status_code == 401
    wrong = httpx.get(f"{served.url}/v1/admin/dashboard", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 403
    page = httpx.get(f"{served.url}/dashboard")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert "/v1/admin/dashboard" in httpx.get(f"{served.url}/openapi.json").json()["paths"]


def test_dashboard_json_matches_the_log(served):
    data = httpx.get(f"{served.url}/v1/admin/dashboard", headers=ADMIN).json()
    truth = expected(served.engine)
    assert data["window_decisions"] == truth["decisions"] == VIEWERS
    assert data["live_version"] == truth["live"]
    got = {(a["arm"], a["model_version"]): (a["decisions"], a["reward"], a["low"], a["high"])
           for a in data["arms"]}
    assert set(got) == set(truth["arms"]) and {arm for arm, _ in got} == {"control",
                                                                           "treatment"}
    for key, (n, mean, low, high) in truth["arms"].items():
        assert got[key][0] == n
        assert got[key][1:] == pytest.approx((mean, low, high), nan_ok=True, abs=1e-9)
    assert sum(a["decisions"] * a["reward"] for a in data["arms"]) == pytest.approx(HAND_TOTAL)
    # everything was sent within the last minute
    assert sum(data["recommend"]["series"]) == VIEWERS
    assert data["recommend"]["per_second"] == pytest.approx(VIEWERS / 60)
    assert sum(data["feedback"]["series"]) == sum(len(e) for e in FEEDBACK)
    assert [g["verdict"] for g in data["gates"]] == [NOT_ENOUGH]
    assert data["gates"][0]["version"] == served.candidate
    assert [a["name"] for a in data["split"]] == ["control", "treatment"]
    assert data["recent"][0]["decision_id"] == truth["newest"]
    assert len(data["recent"]) == VIEWERS


def test_reward_window_keeps_the_newest_decisions(served, monkeypatch):
    monkeypatch.setattr(dashboard, "REWARD_WINDOW", 3)
    with served.engine.connect() as conn:
        rows, rewards = dashboard.window_rewards(conn, JoinConfig())
        newest = sorted(store.iter_decisions(conn), key=lambda r: r["created_at"])[-3:]
    assert {r.decision_id for r in rows} == {r["decision_id"] for r in newest}
    assert set(rewards) == {r.decision_id for r in rows}


def test_snapshots_are_shared_for_a_while(served, monkeypatch):
    snapshots = dashboard.Snapshots(served.engine)
    first = snapshots.get()
    assert snapshots.get() is first
    monkeypatch.setattr(dashboard, "FRESH_SECONDS", 0.0)
    assert snapshots.get() is not first


# ------------------------------------------------------------------ the page
def launch(playwright):
    """Debian's Chromium, headless, with nothing reaching out to the network."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def need_chromium() -> None:
    if not CHROMIUM.exists():
        print(f"dashboard browser test skipped: {CHROMIUM} is missing (apt-get install "
              "chromium)")
        pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package)")


def test_dashboard_page_asks_for_the_admin_key(served):
    need_chromium()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page()
        page.goto(f"{served.url}/dashboard")
        page.wait_for_selector("#key-form.shown", timeout=15_000)
        assert "missing API key" in page.text_content("#key-reason")
        page.fill("#key", "not-the-key")
        page.click("#key-entry button")
        page.wait_for_selector("#key-reason:has-text('wrong API key')", timeout=15_000)
        page.fill("#key", API_KEY)
        page.click("#key-entry button")
        page.wait_for_selector("body[data-refreshes]", timeout=15_000)
        assert not page.is_visible("#key-form")
        assert page.text_content("#live-version") == expected(served.engine)["live"]
        browser.close()


def test_dashboard_page_renders_the_log_in_chromium(served):
    need_chromium()
    truth = expected(served.engine)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{served.url}/dashboard#key={API_KEY}")
        # a selector, not a JS predicate: the page's CSP forbids eval
        page.wait_for_selector("body[data-refreshes]", timeout=15_000)
        assert "key=" not in page.url  # the fragment is dropped once read
        assert page.text_content("#live-version") == truth["live"]
        assert page.text_content("#window-decisions") == str(truth["decisions"])
        for (arm, version), (n, mean, _, _) in truth["arms"].items():
            row = f"#arms tr[data-arm='{arm}'][data-version='{version}']"
            assert page.text_content(f"{row} .decisions") == str(n)
            assert page.text_content(f"{row} .reward") == f"{mean:.3f}"
        assert NOT_ENOUGH in page.text_content("#gates")
        assert page.locator(f"#recent tr[data-decision='{truth['newest']}']").count() == 1
        assert "control 50%" in page.text_content("#split-arms")
        # it refreshes itself: two more decisions show up without a reload
        with httpx.Client(base_url=served.url, timeout=30) as client:
            _traffic(client, range(100, 102))
        deadline = time.monotonic() + 15
        while (page.text_content("#window-decisions") != str(truth["decisions"] + 2)
               and time.monotonic() < deadline):
            page.wait_for_timeout(200)
        assert page.text_content("#window-decisions") == str(truth["decisions"] + 2)
        browser.close()

