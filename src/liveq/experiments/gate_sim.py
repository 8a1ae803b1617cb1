"""The promotion gate proven in the simulator, where each policy's session value is known.

    1. policies   DQN (gamma 0.95) and its myopic twin (gamma 0) trained through
                  `liveq.train` on the small LiveStream world, cached in `out/` (or
                  given as run folders); both served with `epsilon` uniform exploration
    2. truth      each served policy's return per session, measured online
                  (`liveq.eval.online`) in the logs' window of each seed's world
    3. scenarios  per seed, a log of sessions written by the live policy, then the gate
                    upgrade   live myopic, candidate DQN, `sessions` logged: should promote
                    reverse   live DQN, candidate myopic, `sessions` logged: should refuse
                    small     as upgrade with `small_sessions` logged: not enough data
    4. report     each estimator's estimate beside the truth (bias and RMSE over seeds),
                  the verdicts, and the one-step estimates' ranking beside the session one

`collect_sessions` turns rollouts of any behaviour policy into `liveq.ope.sessions.Sessions`,
the structure a service's reward join produces from its decision log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liveq.core.config import require
from liveq.eval.online import evaluate
from liveq.ope.gate import GateConfig, gate
from liveq.ope.sessions import Sessions, target_distribution
from liveq.policies.base import Policy
from liveq.policies.explore import EpsilonGreedy
from liveq.sim.vector import make_vec_env
from liveq.train.config import load_run_config
from liveq.train.loop import torch_threads, train
from liveq.train.restore import load_run_agent

ENV_ID = "liveq/LiveStream-v0"
SMALL_WORLD = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2}
LEARNERS = ("dqn", "myopic")


@dataclass(kw_only=True)
class GateSimConfig:
    """What `liveq ope gate` trains, logs and judges."""

    seeds: int = 3
    """Independent worlds (logs and truths) per scenario."""
    sessions: int = 1024
    """Logged sessions per log of the upgrade and reverse scenarios."""
    small_sessions: int = 48
    """Logged sessions of the small scenario (below the gate's min_sessions)."""
    parallel: int = 32
    """Concurrent viewer slots while logging and measuring the truth."""
    epsilon: float = 0.2
    """Uniform exploration mixed into every served policy (the log's exploration slice)."""
    truth_runs: int = 8
    """Online runs per policy and seed, each of `sessions` sessions, for the truth."""
    train_steps: int = 60_000
    """Environment steps of each learner's training."""
    runs: dict[str, str] = field(default_factory=dict)
    """Trained run folders to use instead of training: {"dqn": path, "myopic": path}."""
    env: dict[str, Any] = field(default_factory=lambda: dict(SMALL_WORLD))
    """LiveStreamConfig overrides (slate_size must stay 1)."""
    gate: GateConfig = field(default_factory=GateConfig)
    """The gate's settings."""

    def validate(self) -> None:
        for name in ("seeds", "sessions", "small_sessions", "parallel", "truth_runs",
                     "train_steps"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got "
                    f"{getattr(self, name)}")
        for name in ("sessions", "small_sessions"):
            require(getattr(self, name) >= self.parallel, f"{name} ({getattr(self, name)}) "
                    f"must be at least parallel ({self.parallel})")
        require(0.0 < self.epsilon <= 1.0, f"epsilon must be in (0, 1], got {self.epsilon}")
        unknown = [k for k in self.runs if k not in LEARNERS]
        require(not unknown, f"runs: unknown {unknown}; name {list(LEARNERS)}")
        require(self.env.get("slate_size", 1) == 1, "ope gate needs env.slate_size 1")
        self.gate.validate()


# ------------------------------------------------------------------ sessions
def collect_sessions(env: Any, behaviour: Policy, sessions: int, seed: int) -> Sessions:
    """Every step of `sessions` complete sessions of `behaviour`, as `Sessions`.

    Each slot of the vector env serves the same number of sessions from the reset on,
    as `liveq.eval.online` does, so long sessions are not under-represented; a restarting
    slot's step (its action ignored) is no decision and is not logged.
    """
    obs, _ = env.reset(seed=seed)
    quota = np.full(env.num_envs, sessions // env.num_envs)
    quota[: sessions % env.num_envs] += 1
    done = np.zeros(env.num_envs, dtype=np.int64)
    restarting = np.zeros(env.num_envs, dtype=bool)
    parts: dict[str, list] = {k: [] for k in ("key", "viewer", "candidates", "mask", "action",
                                              "behaviour", "reward", "terminal")}
    while (done < quota).any():
        live = ~restarting & (done < quota)
        dist = behaviour.probabilities(obs)
        chosen = behaviour.act(obs).actions
        fields = {"key": np.arange(env.num_envs) * (quota.max() + 1) + done,
                  "viewer": obs["viewer"], "candidates": obs["candidates"],
                  "mask": obs["mask"].astype(bool), "action": chosen, "behaviour": dist}
        obs, reward, terminated, truncated, _ = env.step(chosen)
        ended = terminated | truncated
        fields.update(reward=reward, terminal=ended)
        for key, value in fields.items():
            parts[key].append(np.asarray(value)[live])
        done += live & ended
        restarting = ended
    return _as_sessions({k: np.concatenate(v) for k, v in parts.items()})


def _as_sessions(rows: dict[str, np.ndarray]) -> Sessions:
    order = np.argsort(rows["key"], kind="stable")
    key = rows["key"][order]
    session = np.cumsum(np.r_[True, key[1:] != key[:-1]]) - 1
    first = np.searchsorted(session, session)
    behaviour = rows["behaviour"][order].astype(np.float64)
    data = Sessions(session=session.astype(np.int64),
                    step=(np.arange(len(key)) - first).astype(np.int64),
                    viewer=rows["viewer"][order], candidates=rows["candidates"][order],
                    mask=rows["mask"][order], action=rows["action"][order].astype(np.int64),
                    behaviour=behaviour, reward=rows["reward"][order].astype(np.float64),
                    terminal=rows["terminal"][order])
    return data._replace(behaviour=target_distribution(_Fixed(behaviour), data))


class _Fixed:
    """A stand-in policy whose distribution is already known (fills forced steps)."""

    def __init__(self, dist: np.ndarray):
        self.dist = dist

    def probabilities(self, obs: Any, mask: Any = None) -> np.ndarray:
        return self.dist


# ------------------------------------------------------------------ policies
def learner_run(config: GateSimConfig, name: str, out: Path, seed: int) -> Path:
    """The run folder of learner `name`: given, cached in `out/name`, or trained there."""
    if name in config.runs:
        return Path(config.runs[name])
    run = out / name
    if (run / "checkpoints" / "latest.pt").is_file():
        return run
    settings = {"lr": 1e-3, "batch_size": 64, "buffer_size": 20_000, "learning_starts": 500,
                "train_freq": 16, "gradient_steps": 2, "target_update_interval": 200,
                "epsilon_fraction": 0.3, "hidden_sizes": [64, 64]}
    if name == "dqn":
        settings["gamma"] = 0.95
    run_config = load_run_config({
        "seed": seed, "env": {"id": ENV_ID, "n_envs": 16, "kwargs": config.env},
        "agent": {"name": name, name: settings},
        "train": {"total_env_steps": config.train_steps, "eval_every": 0, "eval_episodes": 64,
                  "checkpoint_every": 0, "log_every": config.train_steps, "progress": False}})
    train(run_config, run)
    return run


def load_greedy(run: Path, env: Any) -> Policy:
    """The frozen greedy policy of a trained run folder."""
    return load_run_agent(run, "latest", load_run_config(run / "config.yaml"),
                          env).greedy_policy(frozen=True)


def served(policy: Policy, epsilon: float, seed: int, stream: int) -> Policy:
    """`policy` as served: with `epsilon` uniform exploration drawn from stream `stream`
    of `seed` (never the stream the world of `env.reset(seed)` draws from)."""
    return EpsilonGreedy(policy, epsilon,
                         np.random.default_rng(np.random.SeedSequence([seed, stream])))


# ------------------------------------------------------------------ the study
def scenario(config: GateSimConfig, greedy: dict[str, Policy], live: str, candidate: str,
             sessions: int, seed: int) -> dict[str, Any]:
    """Log `sessions` of the served live policy and run the gate on the candidate."""
    env = make_vec_env(ENV_ID, config.parallel, config.env)
    try:
        data = collect_sessions(env, served(greedy[live], config.epsilon, seed, 1), sessions,
                                seed)
    finally:
        env.close()
    # distributions draw nothing: the stream does not matter here
    verdict = gate(data, target_distribution(served(greedy[live], config.epsilon, seed, 1),
                                             data),
                   target_distribution(served(greedy[candidate], config.epsilon, seed, 1),
                                       data), config.gate)
    return {"live_policy": live, "candidate_policy": candidate, "seed": seed,
            **verdict.to_dict()}


def truths(config: GateSimConfig, greedy: dict[str, Policy],
           seed: int) -> dict[str, float]:
    """Each served policy's mean return per session, online, in the window the logs cover.

    The world changes over the day (streams start and end), so the truth is measured in
    the log's own window: the same seed (world), slots and sessions, repeated
    `truth_runs` times with fresh exploration draws, which decorrelate the runs.
    """
    out = {}
    for name, policy in greedy.items():
        returns = []
        for run in range(config.truth_runs):
            env = make_vec_env(ENV_ID, config.parallel, config.env)
            try:
                summary = evaluate(lambda _, p=policy, r=run: served(p, config.epsilon, seed,
                                                                       2 + r),
                                   env, config.sessions, seed)
            finally:
                env.close()
            returns.append(summary["return"]["mean"])
        out[name] = float(np.mean(returns))
        # the runs' spread: how far one window's mean strays (and the truth's own error)
        out[f"{name}_run_sd"] = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    return out


def run_gate_sim(config: GateSimConfig, seed: int, out: str | Path) -> dict[str, Any]:
    """Train (or load) the policies, then every scenario on every seed; all the rows."""
    config.validate()
    out = Path(out)
    with torch_threads(1):
        env = make_vec_env(ENV_ID, 1, config.env)
        try:
            greedy = {name: load_greedy(learner_run(config, name, out, seed), env)
                      for name in LEARNERS}
        finally:
            env.close()
        children = [int(s) for s in np.random.SeedSequence(seed).generate_state(config.seeds)]
        rows, truth = [], []
        for i, child in enumerate(children):
            truth.append({"seed": i, **truths(config, greedy, child)})
            for name, (live, candidate, n) in scenario_plan(config).items():
                rows.append({"scenario": name, "seed_index": i,
                             **scenario(config, greedy, live, candidate, n, child)})
    return {"truth": truth, "rows": rows, "summary": summarise(rows, truth),
            "ranking": ranking(rows)}


def scenario_plan(config: GateSimConfig) -> dict[str, tuple[str, str, int]]:
    """Scenario name -> (live policy, candidate, logged sessions)."""
    return {"upgrade": ("myopic", "dqn", config.sessions),
            "reverse": ("dqn", "myopic", config.sessions),
            "small": ("myopic", "dqn", config.small_sessions)}


def summarise(rows: list[dict], truth: list[dict]) -> list[dict]:
    """Per (scenario, policy role, estimator): truth, mean estimate, bias and RMSE."""
    out = []
    for name in dict.fromkeys(r["scenario"] for r in rows):
        mine = [r for r in rows if r["scenario"] == name]
        for role in ("live", "candidate"):
            for estimator in mine[0][role]:
                true = np.array([truth[r["seed_index"]][r[f"{role}_policy"]] for r in mine])
                est = np.array([r[role][estimator]["estimate"] for r in mine])
                error = est - true
                out.append({"scenario": name, "role": role, "policy": mine[0][f"{role}_policy"],
                            "estimator": estimator, "truth": float(true.mean()),
                            "estimate": float(est.mean()), "bias": float(error.mean()),
                            "rmse": float(np.sqrt(np.mean(error ** 2)))})
    return out


def ranking(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Per estimator (session-level and one-step DR): on how many of the logs with
    estimates it ranks DQN above the myopic policy."""
    scored = [r for r in rows if r["live"]]
    counts: dict[str, dict[str, int]] = {}
    for r in scored:
        sign = 1.0 if r["candidate_policy"] == "dqn" else -1.0
        figures = {name: sign * d["estimate"] for name, d in r["difference"].items()}
        figures["one-step dr"] = sign * (r["one_step"]["candidate"]["dr"]
                                         - r["one_step"]["live"]["dr"])
        for name, gain in figures.items():
            entry = counts.setdefault(name, {"dqn_first": 0, "logs": 0})
            entry["dqn_first"] += int(gain > 0)
            entry["logs"] += 1
    return counts
