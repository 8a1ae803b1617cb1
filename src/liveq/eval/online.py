"""Online evaluation: run a policy for a fixed number of sessions and report metrics.

Every slot of the vector env serves the same number of sessions (`episodes / n_envs`), so
short sessions are not over-represented, as they would be if we stopped after the first
`episodes` sessions to end. Agents compared with the same seed meet the same world
(common random numbers). Results are per-session arrays plus a summary with 95%
confidence intervals: `{metric: {"mean", "ci_low", "ci_high", "n"}}`. LiveStream's
metrics are fixed here; a scenario env names its own in a `session_metrics` attribute
(`liveq.sim.batched.SessionMetrics`: ad revenue, CTR, CVR, ROI and pacing; the shop's
funnel; the live room's gifts, comments, follows and early leaves).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from liveq.core.stats import mean_ci, ratio_ci, summarise
from liveq.sim.batched import SessionMetrics
from liveq.sim.vector import make_vec_env

# Per-session sums taken from the LiveStream step info.
INFO_SUMS = {"watch_minutes": "watch_minutes", "clicks": "clicked", "gifts": "gifts",
             "comments": "comments", "recommendations": "recommended",
             "cold_start_shown": "cold_start_shown"}
METRIC_ORDER = ("return", "watch_minutes", "clicks", "ctr", "gifts", "length",
                "return_rate", "coverage", "cold_start_share")


class SessionLog:
    """Accumulates per-slot sums and closes them into per-session records: `sums` maps a
    metric to the info entry it totals, `finals` to the entry whose value at a session's
    last step it keeps."""

    def __init__(self, n_envs: int, episodes: int, sums: dict[str, str],
                 finals: dict[str, str] | None = None):
        self.quota = np.full(n_envs, episodes // n_envs)
        self.quota[: episodes % n_envs] += 1
        self.done = np.zeros(n_envs, dtype=np.int64)
        self.sums, self.finals = sums, finals or {}
        if {"return", "length", "shown", "returned"} & {*sums, *self.finals}:
            raise ValueError(f"session metrics {sorted({*sums, *self.finals})} reuse a "
                             "name kept for every env (return, length, shown, returned)")
        self.keys = ["return", "length", "shown", *sums]
        self.running = {k: np.zeros(n_envs) for k in self.keys}
        self.sessions: dict[str, list[np.ndarray]] = {
            k: [] for k in [*self.keys, *self.finals, "returned"]}
        self.shown_ids: list[np.ndarray] = []

    @property
    def finished(self) -> bool:
        return bool((self.done >= self.quota).all())

    def add(self, reward: np.ndarray, ended: np.ndarray, counting: np.ndarray,
            info: dict[str, Any]) -> None:
        live = counting & (self.done < self.quota)
        self.running["return"] += np.where(live, reward, 0.0)
        self.running["length"] += live
        if "shown_ids" in info:
            shown = info["shown_ids"][live]
            self.running["shown"][live] += (shown >= 0).sum(axis=1)
            self.shown_ids.append(np.unique(shown[shown >= 0]))
        for key, field in self.sums.items():
            self.running[key] += np.where(live, info[field], 0)
        closing = ended & live
        for key in self.keys:
            self.sessions[key].append(self.running[key][closing].copy())
            self.running[key][closing] = 0.0
        for key, field in self.finals.items():
            self.sessions[key].append(np.asarray(info[field])[closing].astype(float))
        self.sessions["returned"].append(
            np.asarray(info.get("will_return", np.zeros_like(ended)))[closing].astype(float))
        self.done += closing

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.sessions.items()}


def run_sessions(env: gym.vector.VectorEnv, policy, episodes: int,
                 seed: int | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-session arrays and the ids of every streamer recommended."""
    if episodes < env.num_envs:
        raise ValueError(f"episodes ({episodes}) must be at least the number of parallel "
                         f"sessions ({env.num_envs})")
    obs, _ = env.reset(seed=seed)
    restarting = np.zeros(env.num_envs, dtype=bool)
    log = None
    while log is None or not log.finished:
        actions = policy.act(obs).actions
        obs, reward, terminated, truncated, info = env.step(actions)
        if log is None:
            log = SessionLog(env.num_envs, episodes, *_session_fields(env, info))
        log.add(reward, terminated | truncated, ~restarting, info)
        restarting = terminated | truncated
    ids = np.unique(np.concatenate(log.shown_ids)) if log.shown_ids else np.array([])
    return log.arrays(), ids


def _session_fields(env: gym.vector.VectorEnv,
                    info: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(sums, finals) to log: a scenario env's `session_metrics` (step means are logged as
    sums and divided by the length later), else LiveStream's fixed set when its info has
    it, else nothing beyond return and length."""
    spec = getattr(env.unwrapped, "session_metrics", None)
    if spec is not None:
        return dict(spec.sums) | dict(spec.step_means), dict(spec.finals)
    return (dict(INFO_SUMS) if "clicked" in info else {}), {}


def summarise_scenario(sessions: dict[str, np.ndarray],
                       spec: SessionMetrics) -> dict[str, dict[str, float]]:
    """A scenario's summary: return and length, the spec's per-session metrics and its
    ratios (delta-method intervals), in the spec's order (only its metrics when it names
    an order, so the table stays readable)."""
    length = np.maximum(sessions["length"], 1.0)
    per_session = {k: sessions[k] for k in ("return", "length")}
    per_session |= {m: sessions[m] for m, _ in (*spec.sums, *spec.finals)}
    per_session |= {m: sessions[m] / length for m, _ in spec.step_means}
    summary = summarise(per_session)
    for metric, numerator, denominator in spec.ratios:
        summary[metric] = _entry(ratio_ci(sessions[numerator], sessions[denominator]),
                                 len(sessions[numerator]))
    return {k: summary[k] for k in (spec.order or summary) if k in summary}


def summarise_sessions(sessions: dict[str, np.ndarray], shown_ids: np.ndarray,
                       n_streamers: int | None,
                       spec: SessionMetrics | None = None) -> dict[str, dict[str, float]]:
    """The summary table of one agent; ratio metrics use delta-method intervals."""
    if spec is not None:
        return summarise_scenario(sessions, spec)
    summary = summarise({k: sessions[k] for k in ("return", "length")})
    if "clicks" not in sessions:
        return summary
    summary.update(summarise({k: sessions[k] for k in ("watch_minutes", "clicks", "gifts")}))
    summary["return_rate"] = _entry(mean_ci(sessions["returned"]), len(sessions["returned"]))
    summary["ctr"] = _entry(ratio_ci(sessions["clicks"], sessions["recommendations"]),
                            len(sessions["clicks"]))
    summary["cold_start_share"] = _entry(
        ratio_ci(sessions["cold_start_shown"], sessions["shown"]), len(sessions["shown"]))
    if n_streamers:
        share = len(shown_ids) / n_streamers  # one number for the whole run: no interval
        summary["coverage"] = {"mean": share, "ci_low": share, "ci_high": share, "n": 1}
    return {k: summary[k] for k in METRIC_ORDER if k in summary}


def _entry(triple: tuple[float, float, float], n: int) -> dict[str, float]:
    mean, low, high = triple
    return {"mean": float(mean), "ci_low": float(low), "ci_high": float(high), "n": n}


def evaluate(make_policy: Callable[[gym.vector.VectorEnv], Any], env: gym.vector.VectorEnv,
             episodes: int, seed: int | None) -> dict[str, dict[str, float]]:
    """Summary metrics of the policy `make_policy(env)` over `episodes` sessions of `env`."""
    policy = make_policy(env)
    sessions, shown = run_sessions(env, policy, episodes, seed)
    cfg = getattr(env.unwrapped, "config", None)
    return summarise_sessions(sessions, shown, getattr(cfg, "n_streamers", None),
                              getattr(env.unwrapped, "session_metrics", None))


def make_online_evaluator(env_id: str, kwargs: dict[str, Any] | None, n_envs: int = 64):
    """`evaluate(policy, n_episodes, seed) -> {metric: mean}` for training-time checks."""
    def evaluate_policy(policy, n_episodes: int, seed: int) -> dict[str, float]:
        env = make_vec_env(env_id, min(n_envs, n_episodes), kwargs)
        summary = evaluate(lambda _: policy, env, n_episodes, seed)
        return {metric: entry["mean"] for metric, entry in summary.items()}

    return evaluate_policy
