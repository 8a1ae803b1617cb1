"""The live dashboard: `GET /dashboard` (one self-contained HTML page) and the JSON it
polls, `GET /v1/admin/dashboard`.

The page holds no data: it fetches the JSON every two seconds and draws it, so it is
served to anyone, with a Content-Security-Policy that lets it reach nothing but this
service. The JSON needs the admin key, because it names what the public routes never
hand out: full decision ids (whoever holds one can send feedback for it, i.e. write
rewards the learner trains on and the gate judges), viewer ids, and the gate's verdicts.
The page reads the key from its URL fragment (`/dashboard#key=...`, never sent to the
server, so never in an access log) or a form, and keeps it in the tab's sessionStorage.

Every figure comes from the database, so it covers all worker processes, and the cost of
one refresh is bounded whatever the log's size: each query walks an index over a
bounded range or stops at a LIMIT (one minute of decisions and events, the newest
`REWARD_WINDOW` decisions and their events, the newest `RECENT` decisions, `MODELS`
models), all in one read transaction (a WAL snapshot on SQLite, no write lock), and a
worker takes at most one such snapshot every `FRESH_SECONDS` however many pages are open.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from importlib import resources
from typing import Any, NamedTuple

import numpy as np
from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, Integer, cast, func, select

from liveq.core.stats import student_t_quantile
from liveq.serving import store
from liveq.serving.db import reading
from liveq.serving.join import JoinConfig
from liveq.serving.tables import decisions, events, models

RATE_SECONDS = 60
"""Request rates are counted over the last minute ..."""
BUCKET_SECONDS = 5
"""... in buckets this long (the sparklines' points)."""
REWARD_WINDOW = 2000
"""Per-arm reward is measured on the newest decisions, this many at most (a snapshot then
took 0.14 s, median, on 2 cores shared with other jobs)."""
RECENT = 20
"""Decisions listed in the recent table."""
MODELS = 20
"""Newest models listed (and the live one, however old)."""
FRESH_SECONDS = 2.0
"""A snapshot younger than this is answered again: however many pages poll (every two
seconds), a worker reads the log for them at most once in this time."""
VALUED = ("watch", "gift")
"""Event types worth their amount (minutes, value) rather than one."""
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


# ------------------------------------------------------------------ response model
class Rate(BaseModel):
    per_second: float = Field(description="mean over the last minute")
    series: list[int] = Field(description=f"counts per {BUCKET_SECONDS} s bucket, oldest "
                                          "first; the last bucket is still filling")


class ArmReward(BaseModel):
    arm: str
    model_version: str
    decisions: int = Field(description="decisions of this arm and version in the window")
    rewarded: int = Field(description="of them, decisions with a positive reward")
    reward: float | None = Field(description="mean reward per decision")
    low: float | None = Field(description="95% interval of the mean (Student's t)")
    high: float | None


class ModelRow(BaseModel):
    version: str
    status: str = Field(description="live, candidate or retired")
    created_at: float
    promoted_at: float | None
    retired_at: float | None


class SplitArm(BaseModel):
    name: str
    model: str
    share: float


class GateRow(BaseModel):
    version: str = Field(description="the candidate judged")
    live: str | None = Field(description="the live model it was compared with")
    judged_at: float | None
    verdict: str
    reason: str
    sessions: int | None
    promoted: bool
    difference: dict[str, list[float | None]] = Field(
        description="estimator -> [estimate, low, high] of candidate - live per session")


class RecentDecision(BaseModel):
    decision_id: str
    viewer_id: str
    arm: str
    model_version: str
    items: list[str] = Field(description="the shown streamers, best first")
    reward: float | None = Field(description="reward so far; null outside the window")
    created_at: float


class RewardRule(BaseModel):
    weights: dict[str, float] = Field(description="per event; per minute for watch, per "
                                                  "unit of value for gift")
    count_once: list[str]
    attribution_minutes: float
    window: int = Field(description="newest decisions measured (at most)")


class Dashboard(BaseModel):
    now: float = Field(description="the server's clock (UNIX seconds)")
    recommend: Rate
    feedback: Rate
    window_decisions: int = Field(description="decisions in the reward window")
    arms: list[ArmReward]
    live_version: str | None
    models: list[ModelRow]
    split: list[SplitArm] = Field(description="empty: all traffic to the live model")
    gates: list[GateRow]
    recent: list[RecentDecision]
    reward_rule: RewardRule


# ------------------------------------------------------------------ queries
def _bucket(conn: Connection, column: Any, since: float) -> Any:
    """The bucket number of a time at or after `since` (floor on both databases:
    PostgreSQL's integer cast rounds, SQLite's truncates)."""
    offset = (column - since) / BUCKET_SECONDS
    if conn.dialect.name == "postgresql":
        offset = func.floor(offset)
    return cast(offset, Integer)


def rate(conn: Connection, table: Any, now: float) -> Rate:
    """Rows of `table` created in the last minute, per bucket (an index range scan)."""
    since = now - RATE_SECONDS
    bucket = _bucket(conn, table.c.created_at, since).label("bucket")
    rows = conn.execute(select(bucket, func.count()).where(table.c.created_at >= since)
                        .group_by(bucket))
    series = [0] * (RATE_SECONDS // BUCKET_SECONDS)
    for number, count in rows:
        series[min(max(int(number), 0), len(series) - 1)] += int(count)
    return Rate(per_second=sum(series) / RATE_SECONDS, series=series)


def reward_of_counts(counts: dict[str, tuple[int, float]], rule: JoinConfig) -> float:
    """A decision's reward from its events' `{type: (count, sum of values)}` within the
    attribution window: the reward join's rule (`liveq.serving.join.decision_reward`)
    without walking the events one by one."""
    total, counted = 0.0, 0
    for kind, (count, value_sum) in counts.items():
        if kind == "session_end" or count == 0:
            continue
        if kind in VALUED:
            if kind in rule.count_once:  # the join would keep the first event's value
                raise ValueError(f"count_once: {kind} needs each event's value")
            amount, n = value_sum, count
        else:
            n = min(count, 1) if kind in rule.count_once else count
            amount = float(n)
        total += rule.weights.get(kind, 0.0) * amount
        counted += n
    return total if counted else rule.default_reward


class Decided(NamedTuple):
    """A decision of the reward window."""

    decision_id: str
    arm: str
    model_version: str


def window_rewards(conn: Connection, rule: JoinConfig) -> tuple[list[Decided], dict[str, float]]:
    """The newest `REWARD_WINDOW` decisions and each one's reward."""
    newest = (select(decisions.c.decision_id, decisions.c.arm, decisions.c.model_version,
                     decisions.c.created_at)
              .order_by(decisions.c.created_at.desc(), decisions.c.decision_id.desc())
              .limit(REWARD_WINDOW).subquery())
    rows = [Decided(*r) for r in conn.execute(
        select(newest.c.decision_id, newest.c.arm, newest.c.model_version)).all()]
    limit = newest.c.created_at + 60.0 * rule.attribution_minutes
    grouped = conn.execute(
        select(newest.c.decision_id, events.c.type, func.count(), func.sum(events.c.value))
        .join(events, events.c.decision_id == newest.c.decision_id)
        .where(events.c.created_at >= newest.c.created_at, events.c.created_at <= limit)
        .group_by(newest.c.decision_id, events.c.type)).all()
    counts: dict[str, dict[str, tuple[int, float]]] = {r.decision_id: {} for r in rows}
    for decision_id, kind, count, value_sum in grouped:
        counts[decision_id][kind] = (int(count), float(value_sum or 0.0))
    return rows, {d: reward_of_counts(c, rule) for d, c in counts.items()}


@functools.lru_cache(maxsize=REWARD_WINDOW)
def _t975(df: int) -> float:
    return student_t_quantile(0.975, df)


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """`liveq.core.stats.mean_ci` at 95% (Student's t), with the quantile cached by sample
    size: inverting the t CDF cost more than the rest of a snapshot."""
    x = np.asarray(values, np.float64)
    if x.size < 2:
        mean = float(x.mean()) if x.size else math.nan
        return mean, mean, mean
    mean, half = float(x.mean()), _t975(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def arm_rewards(rows: list[Decided], rewards: dict[str, float]) -> list[ArmReward]:
    """Mean reward per decision with its 95% interval, per (arm, model version)."""
    groups: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        groups.setdefault((row.arm, row.model_version), []).append(rewards[row.decision_id])
    out = []
    for (arm, version), values in sorted(groups.items()):
        mean, low, high = mean_interval(values)
        out.append(ArmReward(arm=arm, model_version=version, decisions=len(values),
                             rewarded=sum(v > 0 for v in values),
                             reward=_finite(mean), low=_finite(low), high=_finite(high)))
    return out


def model_rows(conn: Connection) -> tuple[list[dict], dict | None]:
    """The newest `MODELS` models (with the live one), newest first, and the live one."""
    rows = [dict(r) for r in conn.execute(
        select(models).order_by(models.c.created_at.desc()).limit(MODELS)).mappings()]
    live = store.live_model(conn)
    if live is not None and all(r["version"] != live["version"] for r in rows):
        rows.append(live)
    return rows, live


def gate_row(version: str, gate: dict[str, Any]) -> GateRow:
    """A stored verdict (`liveq.serving.promotion.promote_gated`) as the page shows it."""
    difference = {name: [_finite(v.get(k)) for k in ("estimate", "low", "high")]
                  for name, v in (gate.get("difference") or {}).items() if isinstance(v, dict)}
    sessions, live = gate.get("sessions"), gate.get("live")
    return GateRow(version=version, live=live if isinstance(live, str) else None,
                   judged_at=_finite(gate.get("judged_at")),
                   verdict=str(gate.get("verdict", "")), reason=str(gate.get("reason", "")),
                   sessions=sessions if isinstance(sessions, int) else None,
                   promoted=bool(gate.get("promote")), difference=difference)


def recent(conn: Connection, rewards: dict[str, float]) -> list[RecentDecision]:
    query = (select(decisions.c.decision_id, decisions.c.viewer_id, decisions.c.arm,
                    decisions.c.model_version, decisions.c.slate, decisions.c.created_at)
             .order_by(decisions.c.created_at.desc(), decisions.c.decision_id.desc())
             .limit(RECENT))
    return [RecentDecision(**{k: r[k] for k in ("decision_id", "viewer_id", "arm",
                                                "model_version", "created_at")},
                           items=list(r["slate"]), reward=rewards.get(r["decision_id"]))
            for r in conn.execute(query).mappings()]


def snapshot(engine: Engine) -> Dashboard:
    """Everything the page shows, read in one transaction; rewards by the reward join's
    default rule (its return-visit bonus, a session-level figure, aside)."""
    rule = JoinConfig()
    now = store.now()
    with reading(engine) as conn:
        recommend, feedback = rate(conn, decisions, now), rate(conn, events, now)
        rows, rewards = window_rewards(conn, rule)
        model_list, live = model_rows(conn)
        split = store.current_split(conn)
        latest = recent(conn, rewards)
        conn.rollback()
    return Dashboard(
        now=now, recommend=recommend, feedback=feedback, window_decisions=len(rows),
        arms=arm_rewards(rows, rewards),
        live_version=None if live is None else live["version"],
        models=[ModelRow(**{k: m[k] for k in ModelRow.model_fields}) for m in model_list],
        split=[SplitArm(**arm) for arm in split],
        gates=[gate_row(m["version"], m["gate"]) for m in model_list
               if isinstance(m["gate"], dict)],
        recent=latest,
        reward_rule=RewardRule(weights=rule.weights, count_once=rule.count_once,
                               attribution_minutes=rule.attribution_minutes,
                               window=REWARD_WINDOW))


def _finite(value: Any) -> float | None:
    """JSON has no NaN: an undefined figure is null."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


class Snapshots:
    """`get()`: the newest snapshot, read again when older than `FRESH_SECONDS`; one
    reader at a time (the others wait for its result instead of reading too)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._taken, self._last = -math.inf, None

    def get(self) -> Dashboard:
        with self._lock:
            if self._last is None or time.monotonic() - self._taken >= FRESH_SECONDS:
                self._last = snapshot(self.engine)
                self._taken = time.monotonic()
            return self._last


# ------------------------------------------------------------------ routes
def page() -> str:
    """The packaged page (`liveq/serving/static/dashboard.html`)."""
    return resources.files("liveq.serving").joinpath("static/dashboard.html").read_text(
        encoding="utf-8")


def dashboard_router(engine: Engine, admin: Any) -> APIRouter:
    """`/dashboard` for anyone and `/v1/admin/dashboard` behind `admin` (a `Depends`)."""
    router = APIRouter()
    html, snapshots = page(), Snapshots(engine)
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-store",
               "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

    @router.get("/dashboard", response_class=HTMLResponse)
    def dashboard_page() -> HTMLResponse:
        """The live dashboard (HTML; it polls /v1/admin/dashboard with the admin key)."""
        return HTMLResponse(html, headers=headers)

    @router.get("/v1/admin/dashboard", response_model=Dashboard, dependencies=[admin],
                responses={401: {"description": "no API key"},
                           403: {"description": "wrong API key"}})
    def dashboard_data() -> Dashboard:
        """What the dashboard shows: request rates over the last minute, reward per
        decision by arm, models, the A/B split, the gate's verdicts, recent decisions."""
        return snapshots.get()

    return router
