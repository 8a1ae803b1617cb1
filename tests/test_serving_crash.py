"""Crash safety: under steady feedback load the server is SIGKILLed and restarted several
times; every event that got a 2xx is in the log exactly once, and re-sending it gives
the first answer. Also the property test: Schemathesis drives every route of the OpenAPI
schema with generated input and no answer is a 5xx."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import create_engine, select

from liveq.serving.db import normalise_url
from liveq.serving.tables import events
from serving_support import (  # noqa: F401  (postgres_url is a fixture)
    API_KEY,
    Server,
    catalogue,
    postgres_url,
    train_tiny_run,
)

KILLS = 3
CLIENTS = 4


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("serving-crash") / "run")


class Load:
    """Client threads sending feedback with fresh keys until stopped, recording which
    keys were acknowledged (2xx) and which requests failed without an answer."""

    def __init__(self, url: str, decision_id: str):
        self.url, self.decision_id = url, decision_id
        self.acked: dict[str, int] = {}
        self.unanswered = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run) for _ in range(CLIENTS)]

    def wait_for_more(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                key = uuid.uuid4().hex
                try:
                    r = client.post(f"{self.url}/v1/feedback", json={
                        "decision_id": self.decision_id, "type": "impression",
                        "idempotency_key": key})
                except httpx.HTTPError:
                    with self.lock:
                        self.unanswered += 1
                    time.sleep(0.05)
                    continue
                if 200 <= r.status_code < 300:
                    with self.lock:
                        self.acked[key] = r.json()["event_id"]


@pytest.mark.parametrize("backend,workers", [("sqlite", "1"), ("postgres", "2")])
def test_sigkill_under_feedback_load_loses_no_acknowledged_event(tiny_run, tmp_path, request,
                                                                 backend, workers):
    db = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    server = Server(tiny_run, tmp_path / "state", db, "--workers", workers).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.put("/v1/streamers/live", json=catalogue(20))
        decision = client.post("/v1/recommend", json={"viewer_id": "crash"}).json()
    load = Load(server.url, decision["decision_id"])
    for t in load.threads:
        t.start()
    acked_at_kill = []
    for _ in range(KILLS + 1):
        load.wait_for_more(len(load.acked) + 20)  # steady load is flowing again
        time.sleep(1.0)
        if len(acked_at_kill) == KILLS:
            break
        server.kill()
        acked_at_kill.append(len(load.acked))
        server.start()
    load.stop.set()
    for t in load.threads:
        t.join()
    engine = create_engine(normalise_url(db or f"sqlite:///{tmp_path / 'state' / 'log.db'}"))
    with engine.connect() as conn:
        logged = [r.idempotency_key for r in conn.execute(
            select(events.c.idempotency_key).where(
                events.c.decision_id == decision["decision_id"]))]
    engine.dispose()
    missing = set(load.acked) - set(logged)
    print(f"crash test ({backend}, {workers} workers): {KILLS} SIGKILLs, "
          f"{len(load.acked)} events acknowledged (at each kill: {acked_at_kill}), "
          f"{len(logged)} in the log, {len(missing)} "
          f"acknowledged but missing, {len(logged) - len(set(logged))} duplicates, "
          f"{load.unanswered} requests unanswered")
    assert not missing and len(logged) == len(set(logged))
    assert len(load.acked) > 50 and all(b > a for a, b in zip(acked_at_kill, acked_at_kill[1:],
                                                            strict=False))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for key in list(load.acked)[:20]:  # a retry after the crash gets the first answer
            r = client.post("/v1/feedback", json={"decision_id": decision["decision_id"],
                                                  "type": "impression", "idempotency_key": key})
            assert r.status_code == 200 and r.json()["event_id"] == load.acked[key]
    server.stop()


def test_schemathesis_finds_no_server_error(tiny_run, tmp_path):
    server = Server(tiny_run, tmp_path / "state").start()
    httpx.put(f"{server.url}/v1/streamers/live", json=catalogue(20), timeout=30)
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures = []
    try:
        for result in schema.get_all_operations():
            _drive(result.ok(), server.url, failures)
    finally:
        server.stop()
    assert not failures, failures


def _drive(operation, url: str, failures: list) -> None:
    """Generated requests to one operation; any 5xx is recorded."""

    @settings(max_examples=12, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case):
        response = case.call(base_url=url, headers={"X-API-Key": API_KEY}, timeout=30)
        if response.status_code >= 500:
            failures.append((operation.label, response.status_code, response.text[:200]))

    check()
