"""`liveq report ab --db URL`: the A/B statistics of `liveq ab` on the arms the service logged.

The test window starts at `--since` or, by default, when the newest split with arms was
set (`splits.created_at`), and runs to the log's end. Each viewer belongs to the arm of
their first decision in the window (the service's split is sticky, so a viewer changes
arm only when the split changes; such viewers are counted). A viewer's outcome of a
metric is the sum, over their decisions in the window, of what the reward join credits
to each decision (`liveq.serving.join.decision_reward`, the same attribution window and
count-once rules): `return` with the join's weights, `clicks` counting a decision's
click once, `watch_minutes` summing its watch events. The return-visit bonus of the join
is not added: it needs whole sessions, and arms are compared per viewer.

CUPED's covariate is the same metric over the viewer's decisions before the window (all
served by the live model, whatever arm the viewer lands in later). Viewers with no such
history keep their outcome unadjusted (their covariate is the mean of those with one), so
the adjusted difference stays unbiased; theta is fitted on the viewers with history.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, inspect, select
from sqlalchemy.engine import make_url

from liveq.core.ab_stats import bootstrap_diff, cuped, sample_size, welch
from liveq.core.config import require
from liveq.core.errors import LogError, UsageError
from liveq.serving.db import make_engine, normalise_url, reading
from liveq.serving.join import JoinConfig, decision_reward, load_join_config
from liveq.serving.tables import decisions, events, splits

METRICS = ("return", "clicks", "watch_minutes")


@dataclass(kw_only=True)
class ABLogConfig:
    """Which log, which window and arms, which metric leads."""

    db: str
    """The decision log's database URL (sqlite:///PATH or postgresql://...)."""
    since: str | None = None
    """Start of the test window: UNIX seconds or ISO time (None: the newest split's)."""
    metric: str = "return"
    """The outcome CUPED and the power check use: return, clicks or watch_minutes."""
    control: str | None = None
    """Control arm name (None: `control` if logged, else the split's first arm)."""
    treatment: str | None = None
    """Treatment arm name (None: the only other arm)."""
    mde: float = 0.02
    """Minimum detectable effect, relative to the control mean of `metric`."""
    seed: int = 0
    """Bootstrap seed."""
    join: str | None = None
    """JoinConfig YAML (attribution window, weights, count-once types); None: defaults."""

    def validate(self) -> None:
        require(self.metric in METRICS, f"--metric must be one of {METRICS}, got "
                f"{self.metric!r}")
        require(self.mde > 0, f"--mde must be positive, got {self.mde}")


def parse_time(text: str) -> float:
    """UNIX seconds from `text`: a number, or an ISO 8601 time (UTC when no zone given)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since: expected UNIX seconds or an ISO time such as "
                         f"2026-11-30T12:00:00, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def open_existing(url: str) -> Engine:
    """An engine on an existing liveq log (never creates or migrates one: this only reads)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = Path(make_url(url).database)
        if not path.is_file():
            raise UsageError(f"--db: {path} does not exist")
    engine = make_engine(url)
    try:
        missing = {"decisions", "events", "splits"} - set(inspect(engine).get_table_names())
    except Exception as exc:  # noqa: BLE001  (any driver error: say which URL failed)
        engine.dispose()
        raise UsageError(f"--db: cannot read {make_url(url).render_as_string()}: "
                         f"{str(exc).splitlines()[0]}") from None
    if missing:
        engine.dispose()
        raise UsageError(f"--db: not a liveq decision log (no table {sorted(missing)[0]})")
    return engine


def read_log(engine: Engine) -> tuple[list[dict], dict[str, list[dict]], list[dict]]:
    """(decisions, their events by decision id in (time, id) order, splits) of the log;
    decisions with only the columns the analysis needs."""
    columns = (decisions.c.decision_id, decisions.c.viewer_id, decisions.c.created_at,
               decisions.c.arm)
    with reading(engine) as conn:
        rows = [dict(r) for r in conn.execute(select(*columns).order_by(
            decisions.c.created_at, decisions.c.decision_id)).mappings()]
        by_decision: dict[str, list[dict]] = defaultdict(list)
        for e in conn.execute(select(events).order_by(events.c.created_at,
                                                      events.c.event_id)).mappings():
            by_decision[e["decision_id"]].append(dict(e))
        split_rows = [dict(r) for r in conn.execute(select(splits).order_by(
            splits.c.split_id)).mappings()]
        conn.rollback()
    return rows, by_decision, split_rows


def window_start(cfg: ABLogConfig, split_rows: list[dict]) -> tuple[float, list[str]]:
    """The window's start and the arm names of the split then in force (may be empty)."""
    with_arms = [s for s in split_rows if s["arms"]]
    if cfg.since is not None:
        start = parse_time(cfg.since)
        before = [s for s in split_rows if s["created_at"] <= start]
        arms = before[-1]["arms"] if before and before[-1]["arms"] else (
            with_arms[-1]["arms"] if with_arms else [])
        return start, [a["name"] for a in arms]
    if not with_arms:
        raise UsageError("the log holds no A/B split; set one (PUT /v1/admin/split) or give "
                         "--since with the arms' start")
    return float(with_arms[-1]["created_at"]), [a["name"] for a in with_arms[-1]["arms"]]


def choose_arms(cfg: ABLogConfig, logged: list[str], split_arms: list[str]) -> tuple[str, str]:
    """(control, treatment) among the arms logged in the window."""
    control = cfg.control or ("control" if "control" in logged else next(
        (a for a in split_arms if a in logged), logged[0] if logged else None))
    if control not in logged:
        raise UsageError(f"--control {control}: no decision of that arm in the window "
                         f"(arms logged: {logged})")
    others = [a for a in logged if a != control]
    treatment = cfg.treatment or (others[0] if len(others) == 1 else None)
    if treatment is None:
        raise UsageError(f"arms {others} besides control {control!r}: name one with "
                         "--treatment" if others else f"only arm {control!r} was logged "
                         "in the window")
    if treatment not in logged or treatment == control:
        raise UsageError(f"--treatment {treatment}: not another arm logged in the window "
                         f"(arms logged: {logged})")
    return control, treatment


def credit(rows: list[dict], by_decision: dict[str, list[dict]],
           join: JoinConfig) -> dict[str, np.ndarray]:
    """Per decision row: what each metric credits it (`METRICS` -> (rows,))."""
    configs = {"return": join,
               "clicks": JoinConfig(**{**vars(join), "weights": {"click": 1.0},
                                       "default_reward": 0.0}),
               "watch_minutes": JoinConfig(**{**vars(join), "weights": {"watch": 1.0},
                                              "default_reward": 0.0})}
    return {m: np.array([decision_reward(r, by_decision.get(r["decision_id"], []), c)[0]
                         for r in rows], np.float64) for m, c in configs.items()}


def per_viewer(rows: list[dict], credited: dict[str, np.ndarray]
               ) -> tuple[list[str], dict[str, np.ndarray]]:
    """Viewer ids (first-seen order) and each metric summed per viewer."""
    index: dict[str, int] = {}
    at = np.array([index.setdefault(r["viewer_id"], len(index)) for r in rows], np.int64)
    sums = {m: np.bincount(at, weights=v, minlength=len(index)) if len(rows) else np.zeros(0)
            for m, v in credited.items()}
    return list(index), sums


def ab_from_log(cfg: ABLogConfig) -> dict[str, Any]:
    """Read the log, split it into pre-period and window, and compare the arms."""
    cfg.validate()
    join = load_join_config(cfg.join)
    engine = open_existing(cfg.db)
    try:
        rows, by_decision, split_rows = read_log(engine)
    finally:
        engine.dispose()
    start, split_arms = window_start(cfg, split_rows)
    window = [r for r in rows if r["created_at"] >= start]
    pre = [r for r in rows if r["created_at"] < start]
    if not window:
        last = max((r["created_at"] for r in rows), default=None)
        raise UsageError(f"no decision in the window from {_utc(start)} UTC (the log "
                         + (f"ends at {_utc(last)} UTC)" if last is not None else "is empty)"))
    arm_of: dict[str, str] = {}
    for r in window:
        arm_of.setdefault(r["viewer_id"], r["arm"])
    switched = len({r["viewer_id"] for r in window if r["arm"] != arm_of[r["viewer_id"]]})
    seen = set(arm_of.values())
    logged = [a for a in split_arms if a in seen] + sorted(seen - set(split_arms))
    control, treatment = choose_arms(cfg, logged, split_arms)
    viewers, outcome = per_viewer(window, credit(window, by_decision, join))
    pre_viewers, history = per_viewer(pre, credit(pre, by_decision, join))
    arm = np.array([arm_of[v] for v in viewers])
    pre_at = {v: i for i, v in enumerate(pre_viewers)}
    has = np.array([v in pre_at for v in viewers], bool)
    x = {m: np.array([history[m][pre_at[v]] if v in pre_at else 0.0 for v in viewers])
         for m in METRICS}
    info = {"start": start, "end": max((r["created_at"] for r in window), default=start),
            "decisions": len(window), "pre_decisions": len(pre), "viewers": len(viewers),
            "viewers_switched_arm": switched, "arms_logged": logged}
    return compare_arms(outcome, x, has, arm, (control, treatment), cfg, info)


def cuped_where(y: np.ndarray, x: np.ndarray, has: np.ndarray) -> tuple[np.ndarray, float]:
    """y adjusted by CUPED on the viewers with history (others unchanged), and theta."""
    adjusted = y.copy()
    if has.sum() < 2:
        return adjusted, 0.0
    adjusted[has], theta, _ = cuped(y[has], x[has])
    return adjusted, theta


def compare_arms(outcome: dict[str, np.ndarray], x: dict[str, np.ndarray], has: np.ndarray,
                 arm: np.ndarray, names: tuple[str, str], cfg: ABLogConfig,
                 info: dict[str, Any]) -> dict[str, Any]:
    """Welch and bootstrap per metric, CUPED and the power check on `cfg.metric`."""
    control, treatment = names
    a, b = arm == control, arm == treatment
    if a.sum() < 2 or b.sum() < 2:
        raise LogError(f"arms {control!r} and {treatment!r} have {int(a.sum())} and "
                       f"{int(b.sum())} viewers in the window; each needs at least 2")
    shown = {**vars(cfg), "db": make_url(normalise_url(cfg.db)).render_as_string()}
    result: dict[str, Any] = {"source": "db", "config": shown,  # no password in the JSON
                              "arms": {"control": control, "treatment": treatment},
                              "window": info, "metrics": {}}
    for m in METRICS:
        entry = welch(outcome[m][a], outcome[m][b])
        entry["bootstrap"] = bootstrap_diff(outcome[m][a], outcome[m][b], seed=cfg.seed)
        result["metrics"][m] = entry
    y, keep = outcome[cfg.metric], a | b
    adjusted, theta = cuped_where(y[keep], x[cfg.metric][keep], has[keep])
    in_a = a[keep]
    vy = y[keep].var(ddof=1)
    reduction = float(1 - adjusted.var(ddof=1) / vy) if vy > 0 else 0.0
    result["cuped"] = {**welch(adjusted[in_a], adjusted[~in_a]), "metric": cfg.metric,
                       "theta": theta, "variance_reduction": reduction,
                       "viewers_with_history": int(has[keep].sum())}
    sd = float(np.sqrt((y[a].var(ddof=1) + y[b].var(ddof=1)) / 2))
    mde = cfg.mde * abs(float(y[a].mean()))
    needed = sample_size(sd, mde) if mde > 0 else None
    cuped_needed = (sample_size(sd * math.sqrt(max(1 - reduction, 0.0)), mde)
                    if mde > 0 else None)
    smallest = int(min(a.sum(), b.sum()))
    result["power"] = {"metric": cfg.metric, "mde_relative": cfg.mde, "mde_absolute": mde,
                       "sd": sd, "needed_per_arm": needed, "needed_per_arm_cuped": cuped_needed,
                       "smallest_arm": smallest,
                       "underpowered": needed is None or smallest < needed}
    return result


def report_lines(result: dict[str, Any]) -> list[str]:
    """The printed table of `liveq report ab`."""
    w, arms = result["window"], result["arms"]
    start = _utc(w["start"])
    lines = [f"arms {arms['control']!r} (control) and {arms['treatment']!r} (treatment); "
             f"window from {start} UTC: {w['decisions']} decisions of {w['viewers']} viewers "
             f"({w['viewers_switched_arm']} switched arm, kept in their first); "
             f"{w['pre_decisions']} decisions before it",
             f"{'metric':<14}{'control':>10}{'treatment':>11}{'lift':>10}"
             f"{'95% CI':>22}{'rel':>9}{'p welch':>11}{'p boot':>9}"]
    for name, e in result["metrics"].items():
        interval = f"[{e['ci_low']:+.3g}, {e['ci_high']:+.3g}]"
        rel = f"{e['rel']:>+9.1%}" if math.isfinite(e["rel"]) else f"{'-':>9}"
        lines.append(f"{name:<14}{e['control']:>10.4g}{e['treatment']:>11.4g}"
                     f"{e['diff']:>+10.3g}{interval:>22}{rel}"
                     f"{e['p']:>11.3g}{e['bootstrap']['p']:>9.3g}")
    c, p = result["cuped"], result["power"]
    lines.append(f"CUPED {c['metric']}  lift {c['diff']:+.3g} [{c['ci_low']:+.3g}, "
                 f"{c['ci_high']:+.3g}] p {c['p']:.3g}; variance reduced "
                 f"{c['variance_reduction']:.1%} (theta {c['theta']:.3g}; covariate: the "
                 f"viewer's {c['metric']} before the window, {c['viewers_with_history']} "
                 "viewers have one)")
    lines.append(f"power         to detect {p['mde_relative']:.1%} of control {p['metric']} "
                 f"({p['mde_absolute']:.3g}) at alpha 0.05, power 0.8: {p['needed_per_arm']} "
                 f"per arm ({p['needed_per_arm_cuped']} with CUPED)")
    if p["underpowered"]:
        lines.append(f"warning: underpowered: the smallest arm has {p['smallest_arm']} viewers, "
                     f"{p['needed_per_arm']} needed per arm for this effect")
    return lines
