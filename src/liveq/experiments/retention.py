"""Retention over a simulated week: the same viewers coming back across days.

`liveq compare` scores sessions one by one; each session's end draws whether the viewer
"will come back tomorrow" (the return logit `return_bias + return_satisfaction * mean
satisfaction + return_minutes * log1p(minutes / unit)`) and pays `return_visit` for it.
Here that draw is followed through: a population of viewers (one simulator slot each, their
follows, history, interests and profile kept between visits) lives through `days` days
whose boundaries are midnights of the simulator clock.

The visit model, a consequence of the existing logit rather than a rule for one agent:
- every viewer visits on day 0, at a personal time of day drawn once (the same each day,
  early enough that a session of `max_session_steps` ends before midnight);
- a session's end draws the return as the simulator always does; a viewer who will return
  visits the next day;
- a viewer who will not return visits again on each later day with the base daily chance
  `sigmoid(return_bias)`: the same logit with no session that day (no satisfaction, no
  minutes), so the first visit after a miss is 1 + Geometric(sigmoid(return_bias)) days on.
Between visits a viewer's slot is shown nothing: no clicks, so no watching, follows or
drift, and no weight in any stream's audience.

Metrics, in the units of retention work on short-video recommenders (Cai et al. 2023,
"Reinforcing User Retention in a Billion Scale Short Video Recommender System", report
return time in days and day-N retention): `retention_d1` = share of day-0 viewers active on
day 1; `retention_dN` (N = days) = share active on day N (classic day-N retention);
`retained_any` = share active on any of days 1..N; `return_time` = mean days between a
viewer's consecutive visits, over the gaps observed inside the week (gaps running past day N
are censored, not counted); `return` = reward per session (days 0..N-1). Intervals are 95%,
by viewer (the delta method for the per-session and per-gap ratios).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from liveq.core.config import ConfigError, load_yaml, require
from liveq.core.errors import LiveqError
from liveq.core.numerics import sigmoid
from liveq.core.report import format_table, write_json
from liveq.core.stats import mean_ci, ratio_ci
from liveq.core.units import MINUTES_PER_DAY
from liveq.policies.baselines import BASELINES, make_baseline
from liveq.sim.vector import make_vec_env
from liveq.train.config import load_run_config
from liveq.train.restore import load_run_agent

METRICS = ("retention_d1", "retention_dN", "retained_any", "return_time", "return",
           "sessions")


@dataclass(kw_only=True)
class WeekConfig:
    """How the week is simulated."""

    viewers: int = 512
    """Viewers in the population (one simulator slot each)."""
    days: int = 7
    """Days after day 0; day-N retention is measured on the last one."""
    seed: int = 12345
    """Seed of the world and of the visit times (shared by every policy)."""

    def validate(self) -> None:
        require(self.days >= 1, f"days must be at least 1, got {self.days}")
        require(self.viewers >= 2, f"viewers must be at least 2, got {self.viewers}")


class Week:
    """The visit bookkeeping of one simulated week over a LiveStream core."""

    def __init__(self, core: Any, days: int, seed: int):
        cfg = core.cfg
        self.core, self.days, n = core, days, core.n
        self.day_steps = int(MINUTES_PER_DAY // cfg.step_minutes)
        if cfg.max_session_steps > self.day_steps:
            raise ConfigError(f"max_session_steps ({cfg.max_session_steps}) must fit in a day "
                              f"({self.day_steps} steps of {cfg.step_minutes} min)")
        self.rng = np.random.default_rng([seed, 7])
        self.offset = self.rng.integers(0, self.day_steps - cfg.max_session_steps + 1, size=n)
        self.p_base = float(sigmoid(np.float64(cfg.return_bias)))
        self.visits = np.zeros((n, days + 1), dtype=bool)
        self.next_day = np.zeros(n, dtype=np.int64)
        self.in_session = np.zeros(n, dtype=bool)
        self.base_days = core.viewers.days.copy()
        self.rewards = np.zeros(n)
        self.sessions = np.zeros(n)

    def start_due(self, day: int, step_in_day: int) -> bool:
        """Start the sessions of viewers due now; True when any started."""
        due = ~self.in_session & (self.next_day == day) & (self.offset == step_in_day)
        slots = np.flatnonzero(due)
        if not len(slots):
            return False
        v = self.core.viewers
        v.start_sessions(slots, self.core.rng)
        v.days[slots] = self.base_days[slots] + self.visits[slots].sum(axis=1)
        self.core.needs_reset[slots] = False
        self.in_session[slots] = True
        self.visits[slots, day] = True
        return True

    def ids_for(self, actions: np.ndarray) -> np.ndarray:
        """The policy's slates as streamer ids; viewers away are shown nothing."""
        core = self.core
        pos = core.check_actions(actions)
        rows = np.arange(core.n)[:, None]
        ids = np.where(pos >= 0, core.cand_ids[rows, np.maximum(pos, 0)], -1)
        ids[~self.in_session] = -1
        return ids

    def record(self, day: int, reward: np.ndarray, ended: np.ndarray,
               will_return: np.ndarray) -> None:
        """Book a step: rewards of sessions running, and the next visit of those ending."""
        self.rewards += np.where(self.in_session, reward, 0.0)
        closing = np.flatnonzero(self.in_session & ended)
        later = 1 + self.rng.geometric(self.p_base, size=len(closing))
        self.next_day[closing] = day + np.where(will_return[closing], 1, later)
        self.sessions[closing] += 1
        self.in_session[closing] = False
        # A slot never takes a newcomer: the viewer stays, away until their next visit.
        self.core.viewers.will_return[ended] = True


def simulate_week(env: Any, policy: Any, days: int, seed: int) -> Week:
    """Run `policy` on `env` (a LiveStream vector env, one slot per viewer) for a week."""
    obs, _ = env.reset(seed=seed)
    core = env.unwrapped.core
    week = Week(core, days, seed)
    first = -(-core.clock // MINUTES_PER_DAY) * MINUTES_PER_DAY  # the first midnight
    while core.clock < first:  # nobody visits before day 0 starts; nobody is replaced
        obs, reward, terminated, truncated, info = core.step_ids(
            week.ids_for(policy.act(obs).actions))
        week.record(0, reward, terminated | truncated, info["will_return"])
    for day in range(days):
        for step_in_day in range(week.day_steps):
            if week.start_due(day, step_in_day):
                obs = core.observe()
            obs, reward, terminated, truncated, info = core.step_ids(
                week.ids_for(policy.act(obs).actions))
            week.record(day, reward, terminated | truncated, info["will_return"])
    week.visits[:, days] = week.next_day == days
    return week


def _entry(triple: tuple[float, float, float], n: int) -> dict[str, float]:
    mean, low, high = triple
    return {"mean": float(mean), "ci_low": float(low), "ci_high": float(high), "n": n}


def summarise_week(week: Week) -> dict[str, dict[str, float]]:
    """The retention table row of one policy (see the module docstring)."""
    visits, n = week.visits, len(week.visits)
    gap_sum = np.zeros(n)
    for v in range(n):
        days = np.flatnonzero(visits[v])
        gap_sum[v] = days[-1] - days[0]  # consecutive gaps telescope
    gaps = visits.sum(axis=1) - 1
    row = {
        "retention_d1": _entry(mean_ci(visits[:, 1]), n),
        "retention_dN": _entry(mean_ci(visits[:, -1]), n),
        "retained_any": _entry(mean_ci(visits[:, 1:].any(axis=1)), n),
        "return_time": _entry(ratio_ci(gap_sum, gaps), int(gaps.sum())),
        "return": _entry(ratio_ci(week.rewards, week.sessions), int(week.sessions.sum())),
        "sessions": _entry(mean_ci(week.sessions), n),
    }
    if week.days == 1:  # day N is day 1: one column says it
        del row["retention_dN"]
    return row


def policy_maker(spec: str, checkpoint: str):
    """`make(env) -> policy` for a baseline name or `label:RUN_FOLDER`; errors name it."""
    label, sep, path = spec.partition(":")
    if not sep:
        if spec not in BASELINES:
            raise ConfigError(f"--policies: unknown policy '{spec}'; give a baseline from "
                              f"{sorted(BASELINES)} or label:RUN_FOLDER for a trained run")
        return spec, lambda env: make_baseline(spec, env, 0)
    run = Path(path)
    if not label or not (run / "config.yaml").is_file():
        raise ConfigError(f"--policies: '{spec}': {run} is not a run folder (no config.yaml)")
    config = load_run_config(run / "config.yaml")
    return label, lambda env: load_run_agent(run, checkpoint, config, env).greedy_policy()


def run_retention(config_path: str, specs: list[str], week: WeekConfig,
                  checkpoint: str = "best") -> dict[str, dict[str, dict[str, float]]]:
    """The retention row of every policy in `specs`, all on the same seeded week."""
    week.validate()
    if not specs:
        raise ConfigError("--policies: name at least one policy")
    makers = [policy_maker(s, checkpoint) for s in specs]  # every error before any run
    env_cfg = load_run_config(load_yaml(config_path)).env
    results = {}
    for label, make in makers:
        env = make_vec_env(env_cfg.id, week.viewers, env_cfg.kwargs)
        try:
            results[label] = summarise_week(simulate_week(env, make(env), week.days,
                                                          week.seed))
        finally:
            env.close()
    return results


def table(results: dict[str, dict[str, dict[str, float]]], days: int) -> str:
    """`format_table` with the day-N column named for its day."""
    text = format_table(results)
    return text.replace("retention_dN", f"retention_d{days}", 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="run config whose env is the world")
    p.add_argument("--policies", default="popular,random",
                   help="comma-separated baselines and label:RUN_FOLDER trained runs")
    p.add_argument("--viewers", type=int, default=512)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--checkpoint", choices=("best", "latest"), default="best")
    p.add_argument("--json", help="write results as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    specs = [s.strip() for s in args.policies.split(",") if s.strip()]
    try:
        results = run_retention(args.config, specs, WeekConfig(
            viewers=args.viewers, days=args.days, seed=args.seed), args.checkpoint)
    except LiveqError as exc:
        print(f"liveq: error: {exc}", file=sys.stderr)
        return 2
    print(table(results, args.days))
    if args.json:
        write_json(results, args.json)
    return 0


__all__ = ["METRICS", "Week", "WeekConfig", "main", "policy_maker", "run_retention",
           "simulate_week", "summarise_week", "table"]

if __name__ == "__main__":
    sys.exit(main())
