"""What a LiveStream policy recommends and what it does to sessions: a behaviour profile.

Return per session says which policy is better, not why. This plays a policy (a trained
run's greedy policy or a baseline) on the seeded evaluation sessions that
`liveq.experiments.robustness` uses and counts, over every recommendation, what kind of
streamer it picked: one the viewer follows, the one they are watching now (stay), one
they watched before (repeat), a newcomer (less than a day on the platform), the most
watched of the candidates (popular), a clickbait streamer (hidden: it looks better than
it is), how tired the viewer is of its topic (`recent_overlap`, the fatigue the simulator
charges) and how well it matches the viewer's profile; and per session the length, the
minutes, whether the viewer comes back, and whether they arrived as a returning viewer.

    python -m liveq.experiments.policy_profile runs/r6/default/ppo/seed0 \\
        runs/r6/default/dqn/seed0 --baselines oracle,popular --eval-seed 12345
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from liveq.core.config import load_yaml
from liveq.core.errors import ConfigError
from liveq.features.schema import CANDIDATE_FEATURES, VIEWER_FEATURES
from liveq.policies.baselines import BASELINES, make_baseline
from liveq.sim.vector import make_vec_env
from liveq.train.config import load_run_config
from liveq.train.restore import load_agent

EVAL_SEED = 12345
"""The evaluation world of `liveq.experiments.robustness` (its sessions, in order)."""
EVAL_ENVS = 64
CLICKBAIT_GAP = 1.0
"""A pick counts as clickbait when its hidden attractiveness exceeds its quality by more
than this (the default world's clickbait streamers have a gap of 2, the others 0)."""
PICK_COLUMNS = ("followed", "current", "history_minutes", "is_new", "recent_overlap",
                "match", "est_ctr")
STEP_METRICS = ("clicked", "followed", "stay", "repeat", "new", "popular", "clickbait",
                "overlap", "match", "watch_share")
SESSION_METRICS = ("return", "length", "minutes", "returned", "arrived_returning")
VIEWER_OFFSET_IS_NEW = len(VIEWER_FEATURES) - VIEWER_FEATURES.index("is_new")
"""`is_new` counted from the end of the viewer row (topic blocks come first)."""


class ProfileLog:
    """Per-step pick facts and per-session totals of one policy over its sessions."""

    def __init__(self, n_envs: int, episodes: int):
        self.quota = np.full(n_envs, episodes // n_envs)
        self.quota[: episodes % n_envs] += 1
        self.done = np.zeros(n_envs, dtype=np.int64)
        self.steps: dict[str, list[np.ndarray]] = {k: [] for k in STEP_METRICS}
        self.sessions: dict[str, list[np.ndarray]] = {k: [] for k in SESSION_METRICS}
        self.running = {k: np.zeros(n_envs) for k in ("return", "length", "minutes")}
        self.arrived = np.zeros(n_envs)

    @property
    def finished(self) -> bool:
        return bool((self.done >= self.quota).all())

    def start(self, obs: dict[str, np.ndarray], starting: np.ndarray) -> None:
        """Note whether the viewer of each session starting now has come before."""
        is_new = obs["viewer"][:, -VIEWER_OFFSET_IS_NEW]
        self.arrived = np.where(starting, 1.0 - is_new, self.arrived)

    def add(self, live: np.ndarray, picks: dict[str, np.ndarray], reward: np.ndarray,
            ended: np.ndarray, info: dict[str, Any]) -> None:
        live = live & (self.done < self.quota)
        for key in STEP_METRICS:
            self.steps[key].append(np.asarray(picks[key], dtype=float)[live])
        self.running["return"] += np.where(live, reward, 0.0)
        self.running["length"] += live
        self.running["minutes"] += np.where(live, info["watch_minutes"], 0.0)
        closing = ended & live
        for key in ("return", "length", "minutes"):
            self.sessions[key].append(self.running[key][closing].copy())
            self.running[key][closing] = 0.0
        self.sessions["returned"].append(info["will_return"][closing].astype(float))
        self.sessions["arrived_returning"].append(self.arrived[closing].copy())
        self.done += closing

    def summary(self) -> dict[str, float]:
        out = {k: float(np.concatenate(v).mean()) for k, v in self.sessions.items()}
        out |= {k: float(np.concatenate(v).mean()) for k, v in self.steps.items()}
        out["sessions"] = float(len(np.concatenate(self.sessions["return"])))
        return out



def pick_facts(obs: dict[str, np.ndarray], actions: np.ndarray, core: Any,
               info: dict[str, Any]) -> dict[str, np.ndarray]:
    """What kind of streamer each row's action picked (from the observation it was chosen
    on and the simulator's hidden traits), and what the viewer did with it."""
    rows = np.arange(len(actions))
    cands = obs["candidates"]
    col = {name: CANDIDATE_FEATURES.index(name) for name in
           (*PICK_COLUMNS, "log_viewers")}
    pick = cands[rows, actions]
    viewers = np.where(obs["mask"].astype(bool), cands[:, :, col["log_viewers"]], -np.inf)
    ids = core.cand_ids[rows, actions]
    s = core.streamers
    gap = s.attract[np.maximum(ids, 0)] - s.quality[np.maximum(ids, 0)]
    return {"clicked": info["clicked"], "followed": pick[:, col["followed"]] > 0.5,
            "stay": pick[:, col["current"]] > 0.5,
            "repeat": pick[:, col["history_minutes"]] > 0,
            "new": pick[:, col["is_new"]] > 0.5,
            "popular": actions == viewers.argmax(axis=1),
            "clickbait": (ids >= 0) & (gap > CLICKBAIT_GAP),
            "overlap": pick[:, col["recent_overlap"]], "match": pick[:, col["match"]],
            "watch_share": info["watch_share"]}


def profile(policy: Any, env: Any, episodes: int, seed: int) -> dict[str, float]:
    """Means over `episodes` sessions (session metrics) and their recommendations (step
    metrics) of `policy` on the world `seed` builds; the sessions are those of
    `liveq.eval.online.evaluate` with the same seed."""
    obs, _ = env.reset(seed=seed)
    core = env.unwrapped.core
    log = ProfileLog(env.num_envs, episodes)
    restarting = np.zeros(env.num_envs, dtype=bool)
    log.start(obs, np.ones(env.num_envs, dtype=bool))
    while not log.finished:
        actions = np.asarray(policy.act(obs).actions)
        before = obs
        obs, reward, terminated, truncated, info = env.step(actions)
        ended = terminated | truncated
        log.add(~restarting, pick_facts(before, actions, core, info), reward, ended, info)
        log.start(obs, restarting)
        restarting = ended
    return log.summary()


def run_policy(path: Path, env_for: Any) -> tuple[str, Any, Any]:
    """(name, greedy policy, env) of the run folder or checkpoint `path` (`latest.pt`)."""
    file = path if path.suffix == ".pt" else path / "checkpoints" / "latest.pt"
    agent, config = load_agent(file)
    env = env_for(config)
    return str(path), agent.greedy_policy(), env


def table(rows: dict[str, dict[str, float]]) -> str:
    """Markdown: one row per policy, session metrics then step shares."""
    head = ["policy", *SESSION_METRICS, *STEP_METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        lines.append("| " + " | ".join([name, *(f"{r[k]:.3f}" for k in head[1:])]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", type=Path, help="run folders (their latest.pt) or .pt")
    p.add_argument("--baselines", default="", help="comma-separated baseline names")
    p.add_argument("--config", default="livestream_default",
                   help="the run config the baselines play (runs use their own)")
    p.add_argument("--eval-seed", type=int, default=EVAL_SEED)
    p.add_argument("--episodes", type=int, default=1_000)
    args = p.parse_args(argv)
    if args.episodes < EVAL_ENVS:
        raise ConfigError(f"--episodes must be at least {EVAL_ENVS}, got {args.episodes}")
    names = [n for n in args.baselines.split(",") if n]
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise ConfigError(f"unknown baselines {unknown}; choose from {sorted(BASELINES)}")
    torch.set_num_threads(1)

    def env_for(config: Any) -> Any:
        return make_vec_env(config.env.id, EVAL_ENVS, config.env.kwargs)

    rows = {}
    for run in args.runs:
        name, policy, env = run_policy(run, env_for)
        rows[name] = profile(policy, env, args.episodes, args.eval_seed)
    if names:
        env = env_for(load_run_config(load_yaml(args.config)))
        for name in names:
            policy = make_baseline(name, env, args.eval_seed)
            rows[name] = profile(policy, env, args.episodes, args.eval_seed)
    print(table(rows))


if __name__ == "__main__":
    main()
