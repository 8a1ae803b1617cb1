"""Online evaluation: run a policy for a fixed number of sessions and report metrics.

Every slot of the vector env serves the same number of sessions (`episodes / n_envs`), so
short sessions are not over-represented, as they would be if we stopped after the first
`episodes` sessions to end. Agents compared with the same seed meet the same world
(common random numbers). Results are per-session arrays plus a summary with 95%
confidence intervals: `{metric: {"mean", "ci_low", "ci_high", "n"}}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from liveq.core.stats import mean_ci, ratio_ci, summarise
from liveq.sim.vector import make_vec_env

# Per-session sums taken from the LiveStream step info.
INFO_SUMS = {"watch_minutes": "watch_minutes", "clicks": "clicked", "gifts": "gifts",
             "comments": "comments", "recommendations": "recommended",
             "cold_start_shown": "cold_start_shown"}
METRIC_ORDER = ("return", "watch_minutes", "clicks", "ctr", "gifts", "length",
                "return_rate", "coverage", "cold_start_share")


class SessionLog:
    """Accumulates per-slot sums and closes them into per-session records."""

    def __init__(self, n_envs: int, episodes: int, with_info: bool):
        self.quota = np.full(n_envs, episodes // n_envs)
        self.quota[: episodes % n_envs] += 1
        self.done = np.zeros(n_envs, dtype=np.int64)
        self.keys = ["return", "length", "shown"] + (list(INFO_SUMS) if with_info else [])
        self.running = {k: np.zeros(n_envs) for k in self.keys}
        self.sessions: dict[str, list[np.ndarray]] = {k: [] for k in [*self.keys, "returned"]}
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
        for key, field in INFO_SUMS.items():
            if key in self.running:
                self.running[key] += np.where(live, info[field], 0)
        closing = ended & live
        for key in self.keys:
            self.sessions[key].append(self.running[key][closing].copy())
            self.running[key][closing] = 0.0
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
            log = SessionLog(env.num_envs, episodes, with_info="clicked" in info)
        log.add(reward, terminated | truncated, ~restarting, info)
        restarting = terminated | truncated
    ids = np.unique(np.concatenate(log.shown_ids)) if log.shown_ids else np.array([])
    return log.arrays(), ids


def summarise_sessions(sessions: dict[str, np.ndarray], shown_ids: np.ndarray,
                       n_streamers: int | None) -> dict[str, dict[str, float]]:
    """The summary table of one agent; ratio metrics use delta-method intervals."""
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
    return summarise_sessions(sessions, shown, getattr(cfg, "n_streamers", None))


def make_online_evaluator(env_id: str, kwargs: dict[str, Any] | None, n_envs: int = 64):
    """`evaluate(policy, n_episodes, seed) -> {metric: mean}` for training-time checks."""
    def evaluate_policy(policy, n_episodes: int, seed: int) -> dict[str, float]:
        env = make_vec_env(env_id, min(n_envs, n_episodes), kwargs)
        summary = evaluate(lambda _: policy, env, n_episodes, seed)
        return {metric: entry["mean"] for metric, entry in summary.items()}

    return evaluate_policy
