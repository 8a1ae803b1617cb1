"""`liveq bench serve`: the recommendation service's latency and throughput, measured on
the real server (uvicorn in a subprocess, SQLite in a temporary folder, the demo world's
model) with 1,000 live candidates and a concurrent load generator (`http_load`, on uvloop).

Three figures, each beside the issue's target:

* p50 / p99 latency of `POST /v1/recommend` at a fixed arrival rate (open loop: request
  `i` is due at `i / rate`; its latency counts from when it was due, so a server that falls
  behind is charged for the queue it builds; target p99 < 20 ms at 200 requests/s);
* the maximum sustained recommend rate (closed loop, a fixed number of requests in
  flight; target >= 500/s);
* durable feedback events/s (closed loop; each answer comes after its commit with
  `synchronous=FULL`; target >= 2,000/s), one event per request (`POST /v1/feedback`)
  and `batch` events per request (`POST /v1/feedback/batch`).

Beside them, from each closed-loop phase: how many writes each group commit held (the
service's `/metrics`), so what group commit and batching do to the feedback figure is
measured, not assumed; and the server's CPU time per request (its processes' /proc
times), which a busy shared machine moves much less than it moves the rates.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvloop

from liveq.core.errors import UsageError
from liveq.experiments.bench_server import ServerProcess, free_port, train_demo_run
from liveq.experiments.http_load import Answer, HttpError, LeanClient
from liveq.train.config import load_run_config

TARGETS = {"p99_ms_at_200": 20.0, "recommends_per_s": 500.0, "events_per_s": 2000.0}
API_KEY = "bench-serve-admin-key"


@dataclass(frozen=True)
class Sizes:
    """How long and how hard each phase loads the service."""

    live: int = 1000
    """Live streamers in the catalogue."""
    rate: float = 200.0
    """Fixed arrival rate of the latency phase (requests/s)."""
    low_rate: float = 50.0
    """A second, lower fixed rate: the latency when the server is not saturated."""
    fixed_seconds: float = 15.0
    max_seconds: float = 10.0
    feedback_seconds: float = 10.0
    in_flight: int = 16
    """Requests in flight in the closed-loop phases."""
    viewers: int = 5000
    """Distinct viewer ids the requests draw from."""
    batch: int = 50
    """Events per request in the batched feedback phase."""


FULL = Sizes()
QUICK = Sizes(fixed_seconds=2.0, max_seconds=2.0, feedback_seconds=2.0, in_flight=8)


def say(text: str = "") -> None:
    print(text, flush=True)


def catalogue(n: int, topic_dim: int, seed: int = 0) -> dict[str, Any]:
    """`n` live streamers with plausible logged state (the same for a given seed)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        impressions = rng.randint(0, 5000)
        clicks = rng.randint(0, impressions // 4 + 1)
        out.append({"streamer_id": f"b{i}",
                    "topic": [round(rng.gauss(0, 0.4), 4) for _ in range(topic_dim)],
                    "viewers": float(rng.randint(0, 2000)),
                    "minutes_live": float(rng.randint(0, 300)),
                    "impressions": float(impressions), "clicks": float(clicks),
                    "watch_share": clicks * rng.random(),
                    "age_minutes": float(rng.randint(0, 100_000))})
    return {"streamers": out}


def percentiles(latencies_s: list[float]) -> dict[str, float]:
    ms = np.asarray(latencies_s, np.float64) * 1000.0
    if not ms.size:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max())}


class Load:
    """The load generator: recommend and feedback bodies, sent with asyncio."""

    def __init__(self, url: str, sizes: Sizes,
                 server_cpu: Callable[[], float | None] = lambda: None):
        self.url, self.sizes, self.server_cpu = url, sizes, server_cpu
        self.rng = random.Random(7)
        self.decisions: list[str] = []
        self.errors = 0
        self.keys = 0

    def client(self) -> LeanClient:
        return LeanClient(self.url, max(self.sizes.in_flight, 64), timeout=30.0)

    async def post(self, http: LeanClient, path: str, body: dict) -> Answer | None:
        """The answer, or None (counted as an error) when the connection failed or no
        answer came within 30 s: under a long overload the server may close an idle
        keep-alive connection as it is reused."""
        try:
            return await http.post(path, body)
        except HttpError:
            self.errors += 1
            return None

    async def recommend(self, http: LeanClient) -> bool:
        body = {"viewer_id": f"u{self.rng.randrange(self.sizes.viewers)}", "k": 1}
        response = await self.post(http, "/v1/recommend", body)
        if response is None:
            return False
        if response.status_code != 200:
            self.errors += 1
            return False
        self.decisions.append(response.json()["decision_id"])
        return True

    async def feedback(self, http: LeanClient) -> bool:
        self.keys += 1
        decision = self.decisions[self.keys % len(self.decisions)]
        body = {"decision_id": decision, "type": "impression",
                "idempotency_key": f"bench-{self.keys}"}
        response = await self.post(http, "/v1/feedback", body)
        if response is None:
            return False
        if response.status_code != 200:
            self.errors += 1
            return False
        return True

    async def feedback_batch(self, http: LeanClient) -> bool:
        """`batch` impressions in one request (a client that buffers its events)."""
        events = []
        for _ in range(self.sizes.batch):
            self.keys += 1
            events.append({"decision_id": self.decisions[self.keys % len(self.decisions)],
                           "type": "impression", "idempotency_key": f"bench-{self.keys}"})
        response = await self.post(http, "/v1/feedback/batch", {"events": events})
        if response is None:
            return False
        if response.status_code != 200 or any(
                r["status"] != 200 for r in response.json()["results"]):
            self.errors += 1
            return False
        return True

    async def fixed_rate(self, rate: float, seconds: float) -> dict[str, Any]:
        """Open loop: request i due at start + i / rate; latency from when it was due."""
        latencies: list[float] = []

        async def one(http: LeanClient, due: float) -> None:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if await self.recommend(http):
                latencies.append(time.perf_counter() - due)

        async with self.client() as http:
            start, cpu = time.perf_counter() + 0.05, time.process_time()
            total = int(rate * seconds)
            await asyncio.gather(*(one(http, start + i / rate) for i in range(total)))
            took = time.perf_counter() - start
        return {"rate": rate, "requests": total, "ok": len(latencies),
                "achieved_per_s": len(latencies) / took, **percentiles(latencies),
                "client_cpu_share": (time.process_time() - cpu) / took}

    async def commit_counts(self, http: LeanClient) -> tuple[float, float, float]:
        """The service's group commits so far, the writes they held and the requests in
        flight (`/metrics`; NaN when the service did not answer, which the report prints
        as nan)."""
        counts = {"liveq_group_commits_total": 0.0, "liveq_group_commit_writes_total": 0.0,
                  "liveq_requests_in_flight": 0.0}
        try:
            text = (await http.get("/metrics")).content.decode()
        except HttpError:
            return float("nan"), float("nan"), float("nan")
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in counts:
                counts[name] += float(value)
        return tuple(counts.values())

    async def settle(self, http: LeanClient, limit_s: float = 180.0) -> None:
        """Wait (at most `limit_s`) until the service answers no request but this one's
        `/metrics`: requests a saturated phase left queued (their clients gave up after
        30 s) are still decided and logged, and would bill the next phase for that work."""
        deadline = time.perf_counter() + limit_s
        while time.perf_counter() < deadline:
            in_flight = (await self.commit_counts(http))[2]
            if not in_flight > 1:  # only this read (or no /metrics: NaN)
                return
            await asyncio.sleep(0.5)

    async def closed_loop(self, send, seconds: float) -> dict[str, Any]:
        """`in_flight` workers send back to back for `seconds`; completions per second,
        and how many writes each group commit held meanwhile."""
        latencies: list[float] = []

        async def worker(http: LeanClient) -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                if await send(http):
                    latencies.append(time.perf_counter() - sent)

        async with self.client() as http:
            await self.settle(http)
            commits, writes, _ = await self.commit_counts(http)
            server_cpu = self.server_cpu()
            start, cpu = time.perf_counter(), time.process_time()
            deadline = start + seconds
            await asyncio.gather(*(worker(http) for _ in range(self.sizes.in_flight)))
            took = time.perf_counter() - start
            client_cpu = time.process_time() - cpu
            server_after = self.server_cpu()
            commits_after, writes_after, _ = await self.commit_counts(http)
        return {"in_flight": self.sizes.in_flight, "ok": len(latencies),
                "per_s": len(latencies) / took, **percentiles(latencies),
                "client_cpu_share": client_cpu / took,
                "writes_per_commit": (writes_after - writes) / max(commits_after - commits, 1),
                "server_cpu_ms": None if server_cpu is None else
                1000.0 * (server_after - server_cpu) / max(len(latencies), 1)}


def measure(url: str, sizes: Sizes,
            server_cpu: Callable[[], float | None] = lambda: None) -> dict[str, Any]:
    """The three phases against a running, loaded service."""
    load = Load(url, sizes, server_cpu)

    async def phases() -> dict[str, Any]:
        await load.closed_loop(load.recommend, 1.0)  # warm up: connections, caches
        low = await load.fixed_rate(sizes.low_rate, sizes.fixed_seconds)
        fixed = await load.fixed_rate(sizes.rate, sizes.fixed_seconds)
        peak = await load.closed_loop(load.recommend, sizes.max_seconds)
        events = await load.closed_loop(load.feedback, sizes.feedback_seconds)
        batched = await load.closed_loop(load.feedback_batch, sizes.feedback_seconds)
        batched.update(batch=sizes.batch, events_per_s=batched["per_s"] * sizes.batch)
        if batched["server_cpu_ms"] is not None:
            batched["server_cpu_ms"] /= sizes.batch  # per event
        return {"fixed_rate": fixed, "low_rate": low, "max_rate": peak, "feedback": events,
                "feedback_batch": batched}

    figures = uvloop.run(phases())
    figures["errors"] = load.errors
    return figures


def _met(value: float, target: float, below: bool) -> str:
    return "met" if (value < target if below else value >= target) else "MISSED"


def report_lines(f: dict[str, Any]) -> list[str]:
    fixed, peak, events = f["fixed_rate"], f["max_rate"], f["feedback"]
    p99, rate, eps = fixed["p99_ms"], peak["per_s"], events["per_s"]
    batch, beps = f["feedback_batch"]["batch"], f["feedback_batch"]["events_per_s"]
    at = f"at {fixed['rate']:g} req/s (ms)"
    low = f"recommend p50 / p99 at {f['low_rate']['rate']:g} req/s (ms)"
    return [
        f"liveq bench serve: {f['live']} live candidates, model {f['model']}, "
        f"{f['machine']['cores']} cores, {f['workers']} worker(s), SQLite (WAL, "
        "synchronous=FULL)",
        f"{'figure':44s} {'measured':>12s}   target",
        f"{'recommend p50 ' + at:44s} {fixed['p50_ms']:12.2f}",
        f"{'recommend p99 ' + at:44s} {p99:12.2f}   < 20 "
        f"({_met(p99, TARGETS['p99_ms_at_200'], True)})",
        f"{low:44s} {f['low_rate']['p50_ms']:5.1f} / {f['low_rate']['p99_ms']:5.1f}",
        f"{'max sustained recommends/s':44s} {rate:12.1f}   >= 500 "
        f"({_met(rate, TARGETS['recommends_per_s'], False)})",
        f"{'durable feedback events/s (1 per request)':44s} {eps:12.1f}   >= 2,000 "
        f"({_met(eps, TARGETS['events_per_s'], False)})",
        f"{f'durable feedback events/s ({batch} per request)':44s} {beps:12.1f}   "
        f">= 2,000 ({_met(beps, TARGETS['events_per_s'], False)})",
        f"(closed loop with {peak['in_flight']} in flight; recommend p99 there "
        f"{peak['p99_ms']:.1f} ms, feedback p99 {events['p99_ms']:.1f} ms; "
        f"{f['errors']} non-2xx answers; the load generator itself used "
        f"{peak['client_cpu_share']:.0%} / {events['client_cpu_share']:.0%} of a core)",
        f"(group commit: {peak['writes_per_commit']:.1f} decisions, "
        f"{events['writes_per_commit']:.1f} single events and "
        f"{f['feedback_batch']['writes_per_commit'] * batch:.0f} batched events per "
        "commit, i.e. per fsync)",
        *_cpu_lines(f),
    ]


def _cpu_lines(f: dict[str, Any]) -> list[str]:
    """Server CPU per request, and the rates the machine's cores allow at that cost: the
    figures a busy machine moves least (it slows every request, but bills each its own
    CPU)."""
    phases = (f["max_rate"], f["feedback"], f["feedback_batch"])
    cpu = [p.get("server_cpu_ms") for p in phases]
    if None in cpu or min(cpu) <= 0:
        return []
    cores = f["machine"]["cores"]
    ceiling = [cores * 1000.0 / ms for ms in cpu]
    return [f"(server CPU per recommend / single event / batched event: {cpu[0]:.2f} / "
            f"{cpu[1]:.2f} / {cpu[2]:.3f} ms; {cores} cores at that cost serve at most "
            f"{ceiling[0]:,.0f} recommends/s, {ceiling[1]:,.0f} single or "
            f"{ceiling[2]:,.0f} batched events/s)"]


def run_bench_serve(quick: bool = False, model: str | None = None,
                    workers: int = 2) -> dict[str, Any]:
    """Start the service on a temporary SQLite log, load it, and report the figures."""
    sizes = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="liveq-bench-serve-") as tmp:
        run = Path(model) if model else train_demo_run(Path(tmp) / "run", quick)
        if not (run / "config.yaml").is_file():
            raise UsageError(f"--model: {run} is not a run folder (no config.yaml)")
        topic_dim = int(load_run_config(run / "config.yaml").env.kwargs.get("topic_dim", 6))
        server = ServerProcess(run, Path(tmp) / "serve", free_port(), API_KEY, workers)
        with server:
            say(f"liveq bench serve: service up at {server.url}; putting {sizes.live} live "
                "streamers")
            answer = httpx.put(f"{server.url}/v1/streamers/live",
                               json=catalogue(sizes.live, topic_dim), timeout=120.0)
            if answer.status_code != 200:
                raise UsageError(f"PUT /v1/streamers/live answered {answer.status_code}: "
                                 f"{answer.text[:300]}")
            figures = measure(server.url, sizes, server.cpu_seconds)
    figures.update({"quick": quick, "live": sizes.live, "model": str(model or "demo"),
                    "workers": workers, "targets": TARGETS,
                    "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]}})
    say("\n".join(report_lines(figures)))
    return figures

