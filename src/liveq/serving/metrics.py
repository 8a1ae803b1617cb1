"""Prometheus metrics: requests, latency, decisions and events per arm, per-arm reward.

With several workers, `PROMETHEUS_MULTIPROC_DIR` (set by `liveq serve`) makes every
process write its counts there and `/metrics` adds them up.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The service's counters; one instance per process."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        kw = {"registry": self.registry}
        self.requests = Counter("liveq_requests_total", "HTTP requests",
                                ["route", "method", "status"], **kw)
        self.latency = Histogram("liveq_request_seconds", "request latency",
                                 ["route"], buckets=LATENCY_BUCKETS, **kw)
        self.decisions = Counter("liveq_decisions_total", "recommendations served",
                                 ["arm"], **kw)
        self.events = Counter("liveq_events_total", "feedback events committed",
                              ["type"], **kw)
        self.in_flight = Gauge("liveq_requests_in_flight", "HTTP requests being answered",
                               multiprocess_mode="livesum", **kw)
        self.commits = Counter("liveq_group_commits_total", "transactions the group-commit "
                               "writer committed (one fsync each on SQLite)", **kw)
        self.commit_writes = Counter("liveq_group_commit_writes_total", "decisions and "
                                     "feedback writes those transactions held", **kw)
        self.reward = Counter("liveq_arm_reward_total", "feedback per arm: watch minutes, "
                              "gift value, or a count of clicks, comments, follows",
                              ["arm", "type"], **kw)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def committed(self, writes: int) -> None:
        """One group commit of `writes` writes (called by the writer thread)."""
        self.commits.inc()
        self.commit_writes.inc(writes)

    def decision(self, arm: str) -> None:
        self.decisions.labels(arm).inc()

    def event(self, arm: str, kind: str, value: float | None) -> None:
        self.events.labels(kind).inc()
        if kind not in ("impression", "session_end"):
            self.reward.labels(arm, kind).inc(1.0 if value is None else value)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


class RequestTiming:
    """ASGI middleware that counts every HTTP request by route, method and status and
    times it. Plain ASGI, not `@app.middleware("http")`: Starlette's `BaseHTTPMiddleware`
    runs the rest of the app in a task and streams the response through a memory channel,
    which cost more per request than the whole route did on the feedback path."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500
        self.metrics.in_flight.inc()

        async def timed_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.metrics.in_flight.dec()
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.request(path, scope["method"], status,
                                 time.perf_counter() - start)
