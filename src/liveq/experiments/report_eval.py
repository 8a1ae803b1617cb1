"""Each run's greedy policy played on common seeded sessions, session by session, with the
viewer segment of every session and the Q-value of every chosen action.

Every run of every group plays the same number of sessions of its own world config with
the same evaluation seed (common random numbers: two groups on one world meet the same
viewers). A session's viewer segment is read from what the LiveStream simulator knows
about the viewer when the session starts, `days`, the days on which the viewer was active
before (`liveq.sim.viewers.Viewers`): a newcomer has 0; a veteran seeded with a past has
a geometric number of days with mean 1 / `viewer_traits.veteran_days_p` (5 by default),
and a viewer who returns adds one a visit. So
* new: days == 0 (no history: first session),
* returning: 1 <= days < H,
* heavy: days >= H, with H = ceil(1 / veteran_days_p), the veterans' mean.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from liveq.algos.dqn import GreedyQPolicy
from liveq.core.stats import mean_ci, ratio_ci
from liveq.sim.core import LiveStreamCore
from liveq.sim.vector import make_vec_env
from liveq.train.config import load_run_config
from liveq.train.registry import algorithm
from liveq.train.restore import load_run_agent

SEGMENTS = ("new", "returning", "heavy")
EVAL_ENVS = 64
SUMS = {"watch_minutes": "watch_minutes", "clicks": "clicked", "recommendations": "recommended"}


class Played(NamedTuple):
    """Per-session outcomes of one run's policy (and the Q of its chosen actions)."""

    sessions: dict[str, np.ndarray]  # return, watch_minutes, clicks, recommendations,
    #                                  returned, segment: (sessions,) each
    q_chosen: np.ndarray | None  # (steps,) Q of the greedy action; None: not a Q-learner
    heavy_days: int


def heavy_threshold(env: Any) -> int:
    """H: the days active from which a viewer counts as heavy."""
    return max(2, math.ceil(1.0 / env.unwrapped.core.cfg.viewer_traits.veteran_days_p))


def segment_of(days: np.ndarray, heavy_days: int) -> np.ndarray:
    """0 new, 1 returning, 2 heavy, from each viewer's days active before this session."""
    return np.where(days <= 0, 0, np.where(days >= heavy_days, 2, 1))


def is_livestream(env: Any) -> bool:
    """Whether `env` is the LiveStream simulator (it knows its viewers' days active)."""
    return isinstance(getattr(env.unwrapped, "core", None), LiveStreamCore)


def is_q_learner(run_config: Any, policy: Any) -> bool:
    """Off-policy learners act greedily on a Q-network: their scores are Q-values (PPO's
    greedy policy is also a `GreedyQPolicy`, over logits, so the loop kind decides)."""
    return (algorithm(run_config.agent.name).loop == "off_policy"
            and isinstance(policy, GreedyQPolicy))


class _Tally:
    """Running per-slot sums, closed into per-session records when a session ends."""

    def __init__(self, n: int, episodes: int, segment: np.ndarray):
        self.quota = np.full(n, episodes // n)
        self.quota[: episodes % n] += 1
        self.done = np.zeros(n, dtype=np.int64)
        self.segment = segment
        self.running = {k: np.zeros(n) for k in ("return", *SUMS)}
        self.closed: dict[str, list[np.ndarray]] = {k: [] for k in
                                                    (*self.running, "returned", "segment")}

    def live(self, restarting: np.ndarray) -> np.ndarray:
        return ~restarting & (self.done < self.quota)

    def add(self, live: np.ndarray, reward: np.ndarray, ended: np.ndarray,
            info: dict[str, Any]) -> None:
        self.running["return"] += np.where(live, reward, 0.0)
        for key, field in SUMS.items():
            self.running[key] += np.where(live, info[field], 0.0)
        closing = ended & live
        for key, value in self.running.items():
            self.closed[key].append(value[closing].copy())
            value[closing] = 0.0
        self.closed["returned"].append(info["will_return"][closing].astype(float))
        self.closed["segment"].append(self.segment[closing].copy())
        self.done += closing


def play_sessions(env: Any, policy: Any, episodes: int, seed: int,
                  with_q: bool) -> Played:
    """`episodes` sessions of `policy` on `env` (a LiveStream vector env)."""
    core, heavy = env.unwrapped.core, heavy_threshold(env)
    obs, _ = env.reset(seed=seed)
    tally = _Tally(env.num_envs, episodes, segment_of(core.viewers.days, heavy))
    restarting = np.zeros(env.num_envs, dtype=bool)
    q_parts: list[np.ndarray] = []
    while (tally.done < tally.quota).any():
        live = tally.live(restarting)
        if with_q:
            scores = np.asarray(policy.scores(obs), dtype=np.float64)  # (n, K), -inf masked
            best = scores.max(axis=1)
            q_parts.append(best[live & np.isfinite(best)])
        obs, reward, terminated, truncated, info = env.step(policy.act(obs).actions)
        tally.add(live, reward, terminated | truncated, info)
        # the restart step seated the next viewer: read that session's segment now
        tally.segment[restarting] = segment_of(core.viewers.days, heavy)[restarting]
        restarting = terminated | truncated
    sessions = {k: np.concatenate(v) for k, v in tally.closed.items()}
    sessions["segment"] = sessions["segment"].astype(np.int64)
    return Played(sessions, np.concatenate(q_parts) if with_q else None, heavy)


def play_run(run: Path, episodes: int, seed: int) -> Played | None:
    """Play run folder `run`'s best (else latest) checkpoint; None when its env is not
    the LiveStream simulator (the report then shows its learning curve only)."""
    config = load_run_config(run / "config.yaml")
    env = make_vec_env(config.env.id, min(EVAL_ENVS, episodes), config.env.kwargs)
    try:
        if not is_livestream(env):
            return None
        name = "best" if (run / "checkpoints" / "best.pt").is_file() else "latest"
        policy = load_run_agent(run, name, config, env).greedy_policy()
        with torch.no_grad():
            return play_sessions(env, policy, episodes, seed, is_q_learner(config, policy))
    finally:
        env.close()


def pool(played: list[Played]) -> Played:
    """The sessions (and Q-values) of a group's seeds together."""
    sessions = {k: np.concatenate([p.sessions[k] for p in played]) for k in played[0].sessions}
    qs = [p.q_chosen for p in played if p.q_chosen is not None]
    return Played(sessions, np.concatenate(qs) if qs else None, played[0].heavy_days)


def _entry(triple: tuple[float, float, float], n: int) -> dict[str, float]:
    mean, low, high = triple
    return {"mean": float(mean), "ci_low": float(low), "ci_high": float(high), "n": n}


def summary(sessions: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean and 95% interval of return, watch minutes, clicks, CTR and return rate."""
    n = len(sessions["return"])
    out = {k: _entry(mean_ci(sessions[k]), n) for k in ("return", "watch_minutes", "clicks")}
    out["ctr"] = _entry(ratio_ci(sessions["clicks"], sessions["recommendations"]), n)
    out["return_rate"] = _entry(mean_ci(sessions["returned"]), n)
    return out


def by_segment(sessions: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per viewer segment: its share of sessions and the `summary` of its sessions."""
    out: dict[str, dict[str, Any]] = {}
    total = len(sessions["segment"])
    for code, name in enumerate(SEGMENTS):
        keep = sessions["segment"] == code
        if keep.sum() >= 2:
            part = {k: v[keep] for k, v in sessions.items()}
            out[name] = {"sessions": int(keep.sum()), "share": float(keep.sum() / total),
                         **summary(part)}
    return out
