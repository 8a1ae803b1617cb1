"""`liveq traffic`: the LiveStream simulator's viewers as HTTP clients of a running service.

The simulator keeps the world (streamers going live and offline on their schedules,
outside traffic, the viewers' hidden tastes and patience) and mirrors what a platform
would observe to the service: the live catalogue with each streamer's observable state
(`PUT /v1/streamers/live`, refreshed as the clock moves) and go-live / go-offline events
in between. Every simulated session asks `POST /v1/recommend` for each step; the
simulator's choice and response models decide what the viewer does with the slate the
SERVICE chose (`LiveStreamCore.step_ids`), and the driver reports what happened as
feedback events with idempotency keys. The simulator's true reward per session is kept
(`--truth`), so estimates made later from the service's log can be checked against it.

The sessions of one tick are in flight together (a thread pool); the world steps once
every answer is in, so a run is deterministic given the seed as far as the service's
answers are (exploration off, or seeded identically).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from liveq.core.config import require
from liveq.core.stats import mean_ci
from liveq.core.units import MINUTES_PER_DAY
from liveq.experiments.service_client import ServiceClient
from liveq.sim.config import LiveStreamConfig
from liveq.sim.core import LiveStreamCore
from liveq.sim.livestream import make_config
from liveq.sim.streamers import BORN_LONG_AGO
from liveq.train.config import load_run_config

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
"""Day 0, 00:00 of the simulated clock, as sent in the requests' context time."""


@dataclass(kw_only=True)
class TrafficConfig:
    """What `liveq traffic` is told."""

    url: str
    """Base URL of the running service."""
    config: str = "livestream_small"
    """Run config (a shipped name or a YAML path) whose `env.kwargs` build the world."""
    days: float = 1.0
    """Simulated days of traffic."""
    sessions: int | None = None
    """Concurrent viewer sessions (default: the config's `env.n_envs`)."""
    seed: int = 0
    """World seed: the same seed gives the same world and viewers."""
    api_key: str | None = None
    """Sent as X-API-Key (only admin routes need it)."""
    concurrency: int = 8
    """Requests in flight at once."""
    retrieval: str = "sim"
    """'sim': send the simulator's candidate table as the request's candidates; 'service':
    let the service retrieve from the whole live catalogue."""
    refresh_every: int = 1
    """Ticks between whole-catalogue refreshes; go-live / offline events in between."""
    retry_for_s: float = 120.0
    """How long a request is retried (same body, same key) while the service is down."""

    def validate(self) -> None:
        require(self.days > 0, f"days must be positive, got {self.days}")
        require(self.sessions is None or self.sessions >= 1, "sessions must be at least 1")
        require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        require(self.concurrency >= 1, "concurrency must be at least 1")
        require(self.retrieval in ("sim", "service"), "retrieval must be 'sim' or 'service'")
        require(self.refresh_every >= 1, "refresh_every must be at least 1")
        require(self.retry_for_s > 0, "retry_for_s must be positive")


def streamer_name(slot: int, born_tick: int) -> str:
    """The service's id of the streamer in `slot` (a newcomer in a slot is a new id)."""
    return f"s{slot}" if born_tick == BORN_LONG_AGO else f"s{slot}n{born_tick}"


@dataclass
class Session:
    """One viewer session as the simulator scores it (the truth)."""

    viewer_id: str
    start_tick: int
    steps: int = 0
    reward: float = 0.0
    clicks: int = 0
    watch_minutes: float = 0.0
    gifts: float = 0.0
    comments: float = 0.0
    arm: str = ""  # the A/B arm that served the session's first decision

    def row(self, returned: bool) -> dict[str, Any]:
        return {"viewer_id": self.viewer_id, "arm": self.arm, "start_tick": self.start_tick,
                "steps": self.steps, "return": self.reward, "clicks": self.clicks,
                "watch_minutes": self.watch_minutes, "gifts": self.gifts,
                "comments": self.comments, "returned": returned}


@dataclass
class Tally:
    """What the driver sent and what the simulator paid."""

    decisions: int = 0
    events: dict[str, int] = field(default_factory=dict)
    clicks: int = 0
    watch_minutes: float = 0.0
    finished: list[dict[str, Any]] = field(default_factory=list)


class TrafficDriver:
    """Steps a LiveStream world whose recommendations come from the service."""

    def __init__(self, cfg: TrafficConfig, client: ServiceClient):
        cfg.validate()
        self.cfg, self.client = cfg, client
        run = load_run_config(cfg.config)
        self.world: LiveStreamConfig = make_config(None, dict(run.env.kwargs), "env.kwargs")
        self.n = cfg.sessions or run.env.n_envs
        self.core = LiveStreamCore(self.world, self.n)
        self.ticks = max(1, math.ceil(cfg.days * MINUTES_PER_DAY / self.world.step_minutes))
        self.tally = Tally()
        self.generation = np.zeros(self.n, dtype=np.int64)
        self.live: dict[str, int] = {}  # service id -> simulator slot, live now
        self.names: dict[int, str] = {}  # the reverse
        self.known: set[str] = set()  # ids the service was told of
        self.sessions: list[Session] = []

    def viewer_id(self, slot: int) -> str:
        return f"v{self.cfg.seed}.{slot}.{int(self.generation[slot])}"

    def run(self) -> dict[str, Any]:
        """Drive `days` of traffic; returns the summary with the true per-session returns."""
        self.core.reset(self.cfg.seed)
        self.sessions = [Session(self.viewer_id(i), 0) for i in range(self.n)]
        with ThreadPoolExecutor(self.cfg.concurrency) as pool:
            for tick in range(self.ticks):
                self.mirror(tick, pool)
                self.step(pool)
        self.core.close()
        return self.summary()

    # ---------------------------------------------------------------- the world
    def mirror(self, tick: int, pool: ThreadPoolExecutor) -> None:
        """Tell the service who is live now: the whole catalogue every `refresh_every`
        ticks (and whenever a streamer it never saw goes live), else the changes."""
        state = self.core.live_streamers()
        names = [streamer_name(int(s), int(b)) for s, b in zip(state["id"],
                                                                state["born_tick"],
                                                                strict=True)]
        now = dict(zip(names, (int(s) for s in state["id"]), strict=True))
        unseen = [name for name in now if name not in self.known]
        if tick % self.cfg.refresh_every == 0 or unseen:
            self.client.call("PUT", "/v1/streamers/live",
                             {"streamers": _catalogue(names, state)})
            self.known.update(names)
        else:
            viewers = dict(zip(names, state["viewers"].tolist(), strict=True))
            calls = [("POST", f"/v1/streamers/{name}/offline", None)
                     for name in sorted(set(self.live) - set(now))]
            calls += [("POST", f"/v1/streamers/{name}/live", {"viewers": viewers[name]})
                      for name in sorted(set(now) - set(self.live))]
            list(pool.map(lambda c: self.client.call(*c), calls))
        self.live, self.names = now, {slot: name for name, slot in now.items()}

    # ---------------------------------------------------------------- one step
    def step(self, pool: ThreadPoolExecutor) -> None:
        """One step: every session in progress asks, the world responds, events go out."""
        rows = np.flatnonzero(~self.core.needs_reset)
        answers = list(pool.map(lambda r: self.recommend(int(r)), rows))
        ids = np.full((self.n, self.world.slate_size), -1, dtype=np.int64)
        for row, answer in zip(rows, answers, strict=True):
            self.sessions[row].arm = self.sessions[row].arm or str(answer.get("arm", ""))
            slots = [self.live.get(item["streamer_id"], -1) for item in answer["items"]]
            ids[row, :len(slots)] = slots[:self.world.slate_size]
        _, reward, terminated, truncated, info = self.core.step_ids(ids)
        ended = terminated | truncated
        feedback = [self.events(int(r), a["decision_id"], info)
                    for r, a in zip(rows, answers, strict=True)]
        list(pool.map(self.send_all, feedback))
        self.tally.decisions += len(rows)
        self.account(rows, reward, ended, info)

    def recommend(self, row: int) -> dict[str, Any]:
        when = EPOCH + timedelta(minutes=self.core.clock)
        body: dict[str, Any] = {"viewer_id": self.sessions[row].viewer_id,
                                "context": {"time": when.isoformat(), "device": "sim"},
                                "k": self.world.slate_size}
        if self.cfg.retrieval == "sim":
            cands = [self.names[c] for c in self.core.cand_ids[row].tolist()
                     if c in self.names]
            if cands:
                body["candidates"] = cands
        return self.client.call("POST", "/v1/recommend", body)

    def events(self, row: int, decision_id: str, info: dict[str, np.ndarray]
               ) -> list[dict[str, Any]]:
        """The feedback bodies of one decision, in the order the viewer did things."""
        names = self.names
        out: list[dict[str, Any]] = []

        def add(kind: str, streamer: int | None = None, index: int = 0, **extra: Any) -> None:
            body = {"decision_id": decision_id, "type": kind,
                    "idempotency_key": f"{decision_id}.{kind}.{index}", **extra}
            if streamer is not None:
                body["streamer_id"] = names[streamer]
            out.append(body)

        for rank, slot in enumerate(int(s) for s in info["shown_ids"][row]):
            if slot >= 0:
                add("impression", slot, rank)
        clicked = int(info["clicked_id"][row])
        if clicked >= 0:
            add("click", clicked)
            minutes = float(info["watch_minutes"][row])
            if minutes > 0:
                add("watch", clicked, minutes=min(minutes, 1440.0))
            if info["gifts"][row] > 0:
                add("gift", clicked, value=float(info["gifts"][row]))
            for i in range(int(info["comments"][row])):
                add("comment", clicked, i)
            if int(info["follow_id"][row]) >= 0:
                add("follow", int(info["follow_id"][row]))
        if info["session_end"][row]:
            add("session_end")
        return out

    def send_all(self, bodies: list[dict[str, Any]]) -> None:
        """One decision's events in order (the service's viewer state depends on it)."""
        for body in bodies:
            self.client.call("POST", "/v1/feedback", body)

    def account(self, rows: np.ndarray, reward: np.ndarray, ended: np.ndarray,
                info: dict[str, np.ndarray]) -> None:
        tally = self.tally
        for row in rows.tolist():
            for body in self.events(row, "0" * 32, info):
                tally.events[body["type"]] = tally.events.get(body["type"], 0) + 1
            session = self.sessions[row]
            session.steps += 1
            session.reward += float(reward[row])
            session.clicks += int(info["clicked"][row])
            session.watch_minutes += float(info["watch_minutes"][row])
            session.gifts += float(info["gifts"][row])
            session.comments += float(info["comments"][row])
            tally.clicks += int(info["clicked"][row])
            tally.watch_minutes += float(info["watch_minutes"][row])
            if ended[row]:
                returned = bool(info["will_return"][row])
                tally.finished.append(session.row(returned))
                if not returned:
                    self.generation[row] += 1
                # the slot restarts on the next step (its action is ignored there)
                self.sessions[row] = Session(self.viewer_id(row), self.core.tick + 1)

    # ---------------------------------------------------------------- results
    def summary(self) -> dict[str, Any]:
        returns = [s["return"] for s in self.tally.finished]
        mean, low, high = mean_ci(returns)
        return {"url": self.cfg.url, "config": self.cfg.config, "seed": self.cfg.seed,
                "days": self.cfg.days, "ticks": self.ticks, "concurrent_sessions": self.n,
                "sessions": len(returns), "decisions": self.tally.decisions,
                "events": sum(self.tally.events.values()),
                "events_by_type": dict(sorted(self.tally.events.items())),
                "return_mean": mean, "return_ci95": [low, high],
                "clicks": self.tally.clicks, "watch_minutes": self.tally.watch_minutes,
                "retries": self.client.retries, "by_arm": by_arm(self.tally.finished),
                "session_returns": self.tally.finished}


def by_arm(finished: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per A/B arm: sessions and the true return per session with its 95% interval."""
    out = {}
    for arm in sorted({s["arm"] for s in finished}):
        returns = [s["return"] for s in finished if s["arm"] == arm]
        mean, low, high = mean_ci(returns)
        out[arm] = {"sessions": len(returns), "return_mean": mean, "return_ci95": [low, high]}
    return out


def _catalogue(names: list[str], state: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The PUT body's streamers: what the platform observes of each live streamer."""
    return [{"streamer_id": name, "topic": [round(float(x), 6) for x in state["topic"][i]],
             "viewers": float(state["viewers"][i]),
             "minutes_live": float(state["minutes_live"][i]),
             "impressions": float(state["impressions"][i]),
             "clicks": float(state["clicks"][i]),
             "watch_share": float(state["watch_sum"][i]),
             "age_minutes": float(state["age_minutes"][i])}
            for i, name in enumerate(names)]


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The printed summary (the truth JSON holds the same figures)."""
    low, high = summary["return_ci95"]
    by_type = ", ".join(f"{k} {v}" for k, v in summary["events_by_type"].items())
    return [
        f"liveq traffic: {summary['days']:g} simulated days ({summary['ticks']} steps, "
        f"{summary['concurrent_sessions']} concurrent sessions) against {summary['url']}",
        f"  sessions finished  {summary['sessions']}",
        f"  decisions          {summary['decisions']}",
        f"  events             {summary['events']} ({by_type})",
        f"  return / session   {summary['return_mean']:.4f} "
        f"(95% CI {low:.4f} .. {high:.4f}; the simulator's true reward)",
        f"  clicks             {summary['clicks']}",
        f"  watch minutes      {summary['watch_minutes']:.1f}",
        f"  retried requests   {summary['retries']}",
        *(f"  arm {arm:<15} {a['sessions']} sessions, return / session {a['return_mean']:.4f} "
          f"(95% CI {a['return_ci95'][0]:.4f} .. {a['return_ci95'][1]:.4f})"
          for arm, a in summary["by_arm"].items() if len(summary["by_arm"]) > 1),
    ]


def run_traffic(cfg: TrafficConfig) -> dict[str, Any]:
    """Run the driver against `cfg.url`; the summary with the true session returns."""
    client = ServiceClient(cfg.url, api_key=cfg.api_key, retry_for_s=cfg.retry_for_s,
                           max_connections=max(cfg.concurrency, 4))
    try:
        return TrafficDriver(cfg, client).run()
    finally:
        client.close()
