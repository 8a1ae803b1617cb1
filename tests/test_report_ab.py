"""`liveq report ab --db` on a log the real service wrote (the FastAPI app in process, on
SQLite): a pre-period on the live model, then a 50/50 split whose treatment arm gets more
clicks and watch time by a fixed rule; lift, p-values and CUPED checked against scipy and
numpy on the per-viewer numbers the test itself sent."""

from __future__ import annotations

import hashlib
import json
import uuid

import numpy as np
import pytest
from scipy import stats
from starlette.testclient import TestClient

from liveq.cli.main import main
from liveq.serving.app import create_app
from liveq.serving.db import open_log
from liveq.serving.service import startup_model
from liveq.serving.settings import serve_config
from serving_support import API_KEY, catalogue

VIEWERS, PRE, POST = 40, 2, 2
WATCH_WEIGHT = 0.05  # JoinConfig's default reward per watch minute (click: 1)
ADMIN = {"X-API-Key": API_KEY}


def _draw(*parts: str) -> float:
    return int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:12], 16) / 16 ** 12


def _serve_and_react(client: TestClient, viewer: str, totals: dict) -> str:
    """One recommendation and the viewer's feedback; adds what was sent to `totals`."""
    r = client.post("/v1/recommend", json={"viewer_id": viewer})
    assert r.status_code == 200, r.text
    answer = r.json()
    treated = answer["arm"] == "treatment"
    did = answer["decision_id"]
    base = _draw(viewer)  # a viewer's own taste: what makes the pre-period predictive
    clicked = _draw(did) < 0.2 + 0.5 * base + (0.15 if treated else 0.0)
    if clicked:
        minutes = round(1 + 20 * base * _draw(did, "m") + (4.0 if treated else 0.0), 3)
        for event in ({"type": "click"}, {"type": "watch", "minutes": minutes}):
            f = client.post("/v1/feedback", json={"decision_id": did,
                                                  "idempotency_key": uuid.uuid4().hex, **event})
            assert f.status_code == 200, f.text
        totals["clicks"] += 1
        totals["watch_minutes"] += minutes
    return answer["arm"]


@pytest.fixture(scope="module")
def logged(tmp_path_factory, tiny_dqn_runs):
    root = tmp_path_factory.mktemp("report-ab")
    run = tiny_dqn_runs / "dqn-s0"
    db = f"sqlite:///{root / 'log.db'}"
    engine = open_log(db)
    version = startup_model(engine, str(run))["version"]
    engine.dispose()
    app = create_app(serve_config(model=str(run), db=db, state_dir=str(root / "state"),
                                  api_key=API_KEY, epsilon=0.3))
    pre = {f"viewer-{v}": {"clicks": 0, "watch_minutes": 0.0} for v in range(VIEWERS)}
    post = {f"viewer-{v}": {"clicks": 0, "watch_minutes": 0.0} for v in range(VIEWERS)}
    arms = {}
    with TestClient(app) as client:
        assert client.put("/v1/streamers/live", json=catalogue(30)).status_code == 200
        for viewer, totals in pre.items():
            for _ in range(PRE):
                assert _serve_and_react(client, viewer, totals) == "live"
        split = [{"name": "control", "model": version, "share": 0.5},
                 {"name": "treatment", "model": version, "share": 0.5}]
        assert client.put("/v1/admin/split", json={"arms": split},
                          headers=ADMIN).status_code == 200
        for viewer, totals in post.items():
            for _ in range(POST):
                arms[viewer] = _serve_and_react(client, viewer, totals)
    return {"db": db, "root": root, "pre": pre, "post": post, "arms": arms}


def _by_arm(logged, metric: str, period: str = "post") -> tuple[np.ndarray, np.ndarray]:
    def value(v: str) -> float:
        t = logged[period][v]
        return (t["clicks"] + WATCH_WEIGHT * t["watch_minutes"] if metric == "return"
                else t[metric])
    viewers = sorted(logged["arms"])
    return (np.array([value(v) for v in viewers if logged["arms"][v] == "control"]),
            np.array([value(v) for v in viewers if logged["arms"][v] == "treatment"]))


def test_lift_and_p_value_match_scipy_on_the_viewers_numbers(logged, tmp_path, capsys):
    out = tmp_path / "ab.json"
    assert main(["report", "ab", "--db", logged["db"], "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "arms 'control' (control) and 'treatment' (treatment)" in printed
    result = json.loads(out.read_text())
    assert result["window"]["decisions"] == VIEWERS * POST
    assert result["window"]["pre_decisions"] == VIEWERS * PRE
    for metric in ("return", "clicks", "watch_minutes"):
        a, b = _by_arm(logged, metric)
        e = result["metrics"][metric]
        assert (e["n_control"], e["n_treatment"]) == (a.size, b.size)
        assert e["diff"] == pytest.approx(b.mean() - a.mean(), abs=1e-6)
        assert e["rel"] == pytest.approx((b.mean() - a.mean()) / a.mean(), rel=1e-6)
        assert e["p"] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue,
                                       rel=1e-6)
    assert result["metrics"]["clicks"]["diff"] > 0  # the rule favours treatment


def test_cuped_uses_each_viewers_pre_split_history(logged, tmp_path):
    out = tmp_path / "ab.json"
    assert main(["report", "ab", "--db", logged["db"], "--metric", "clicks",
                 "--json", str(out)]) == 0
    c = json.loads(out.read_text())["cuped"]
    assert c["viewers_with_history"] == VIEWERS
    ya, yb = _by_arm(logged, "clicks")
    xa, xb = _by_arm(logged, "clicks", "pre")
    y, x = np.concatenate([ya, yb]), np.concatenate([xa, xb])
    theta = np.cov(x, y)[0, 1] / x.var(ddof=1)
    adjusted = y - theta * (x - x.mean())
    assert c["theta"] == pytest.approx(theta, rel=1e-9)
    assert c["diff"] == pytest.approx(adjusted[ya.size:].mean() - adjusted[:ya.size].mean(),
                                      abs=1e-9)
    assert c["variance_reduction"] == pytest.approx(1 - adjusted.var(ddof=1) / y.var(ddof=1))


def test_since_a_time_after_everything_leaves_no_viewers(logged, capsys):
    assert main(["report", "ab", "--db", logged["db"], "--since", "2999-01-01T00:00"]) == 2
    err = capsys.readouterr().err
    assert "no decision in the window from 2999-01-01 00:00:00 UTC" in err


def test_bad_inputs_are_one_line_errors(logged, tmp_path, capsys):
    cases = [(["report", "ab", "--db", f"sqlite:///{tmp_path / 'none.db'}"], "does not exist"),
             (["report", "ab"], "needs --db"),
             (["report", "ab", "--db", logged["db"], "--out", "x.html"], "--out"),
             (["report", "ab", "--db", logged["db"], "--since", "yesterday"], "--since"),
             (["report", "ab", "--db", logged["db"], "--treatment", "nope"], "--treatment")]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("liveq: error:") and message in err and err.count("\n") == 1


def test_the_html_report_takes_report_ab_json(logged, tiny_dqn_runs, tmp_path):
    result = tmp_path / "ab.json"
    assert main(["report", "ab", "--db", logged["db"], "--json", str(result)]) == 0
    out = tmp_path / "r.html"
    assert main(["report", str(tiny_dqn_runs), "--out", str(out), "--episodes", "0",
                 "--ab", str(result)]) == 0
    html, lift = out.read_text(), json.loads(result.read_text())["metrics"]["watch_minutes"]
    assert "arm treatment against control" in html and f"<td>{lift['diff']:+.4g}</td>" in html
    assert (tmp_path / "r_files" / "ab.png").is_file()
