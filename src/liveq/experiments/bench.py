"""`liveq bench`: simulator throughput, and DQN training throughput beside Stable-Baselines3.

Everything is measured in one run on this machine, so read the ratios, not the absolute
figures (other processes may share the cores).

1. Simulator: viewer-steps/s of `LiveStreamVectorEnv` at several batch sizes (the largest
   on the platform-scale world of `the shipped livestream_large config`), stepping the first
   live candidate of every session; median of a few timed repeats after a warm-up. The
   single-session `LiveStreamEnv` is timed the same way for reference.
2. Training: liveq's DQN with the demo config (the shipped `livestream_default` config) and
   SB3's DQN (`liveq.experiments.bench_sb3`) each collect the same env-step budget on the same world
   with `invalid_action="empty"` and the same number of PyTorch threads (the config's
   `train.torch_threads`). Training time excludes building the learner and the final
   evaluation (liveq's includes writing its last checkpoint). Both greedy policies then
   meet the same seeded sessions and are compared by mean return with 95% intervals.
   `liveq bench sb3` (`liveq.experiments.bench_fair`) adds SB3 on liveq's own settings
   and the time each learner needs to reach the same return.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from liveq.core.config import load_yaml
from liveq.eval.online import evaluate
from liveq.experiments.bench_logs import bench_logs, log_lines
from liveq.experiments.bench_scenarios import bench_scenarios
from liveq.sim.livestream import LiveStreamEnv, LiveStreamVectorEnv
from liveq.sim.vector import make_vec_env

LARGE_WORLD = {"n_streamers": 10_000, "n_candidates": 16}  # the shipped livestream_large config
SIM_TARGET = (100_000, 500_000)  # (batch, viewer-steps/s) the simulator should reach
SPEEDUP_TARGET = 10.0  # liveq env-steps/s over SB3's
EVAL_SEED = 12345
EVAL_ENVS = 64


@dataclass(frozen=True)
class SimCase:
    """One simulator measurement: `batch` sessions, `steps` vector steps per repeat."""

    batch: int
    steps: int
    world: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchSizes:
    """How much work each part of the bench does."""

    sim_cases: tuple[SimCase, ...]
    single_env_steps: int
    repeats: int
    train_steps: int  # env-step budget of each learner
    learning_starts: int | None  # None: the demo config's
    eval_episodes: int
    log_rows: int  # rows of the Twitch-shaped log


FULL = BenchSizes(
    sim_cases=(SimCase(1, 2_000), SimCase(1_000, 300), SimCase(100_000, 10, LARGE_WORLD)),
    single_env_steps=2_000, repeats=5, train_steps=60_000, learning_starts=None,
    eval_episodes=512, log_rows=3_000_000)
QUICK = BenchSizes(
    sim_cases=(SimCase(1, 50), SimCase(100, 20), SimCase(2_000, 5, LARGE_WORLD)),
    single_env_steps=50, repeats=3, train_steps=640, learning_starts=128, eval_episodes=64,
    log_rows=100_000)


def say(text: str = "") -> None:
    print(text, flush=True)


# ------------------------------------------------------------------ simulator
def first_live(obs: dict[str, np.ndarray]) -> np.ndarray:
    """The cheapest valid policy: the first unmasked candidate of each session."""
    return np.argmax(obs["mask"], axis=-1)


def _step_vector(env: LiveStreamVectorEnv, obs: dict, steps: int) -> dict:
    for _ in range(steps):
        obs = env.step(first_live(obs))[0]
    return obs


def _step_single(env: LiveStreamEnv, obs: dict, steps: int) -> dict:
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(int(first_live(obs)))
        if terminated or truncated:
            obs = env.reset()[0]
    return obs


def _timed_rates(step: Callable[[dict, int], dict], obs: dict, steps: int, repeats: int,
                 sessions: int) -> list[float]:
    """Viewer-steps/s of each timed repeat, after a warm-up of a tenth of a repeat."""
    obs = step(obs, max(2, steps // 10))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        obs = step(obs, steps)
        rates.append(sessions * steps / (time.perf_counter() - start))
    return rates


def time_vector_env(case: SimCase, repeats: int) -> list[float]:
    env = LiveStreamVectorEnv(case.batch, **case.world)
    return _timed_rates(partial(_step_vector, env), env.reset(seed=0)[0], case.steps,
                        repeats, case.batch)


def time_single_env(steps: int, repeats: int) -> list[float]:
    """The single-session `LiveStreamEnv`, reset whenever a session ends."""
    env = LiveStreamEnv()
    return _timed_rates(partial(_step_single, env), env.reset(seed=0)[0], steps, repeats, 1)


def bench_simulator(sizes: BenchSizes) -> dict[str, Any]:
    say(f"simulator: viewer-steps/s, median of {sizes.repeats} repeats after a warm-up")
    single = statistics.median(time_single_env(sizes.single_env_steps, sizes.repeats))
    say(f"  LiveStreamEnv (one session)      {single:>12,.0f}")
    vector = []
    for case in sizes.sim_cases:
        rates = time_vector_env(case, sizes.repeats)
        median = statistics.median(rates)
        vector.append({"batch": case.batch, "world": {**case.world}, "steps": case.steps,
                       "viewer_steps_per_s": median, "repeats": rates})
        world = "large world" if case.world else "demo world"
        say(f"  LiveStreamVectorEnv batch {case.batch:>7,}  {median:>12,.0f}  ({world})")
    target_batch, target_rate = SIM_TARGET
    at_target = [v["viewer_steps_per_s"] for v in vector if v["batch"] == target_batch]
    meets = at_target[0] >= target_rate if at_target else None
    return {"single_env_steps_per_s": single, "vector": vector,
            "target": {"batch": target_batch, "viewer_steps_per_s": target_rate,
                       "met": meets}}


# ------------------------------------------------------------------ training
def liveq_run_config(sizes: Any, eval_every: int = 0):
    """The demo run config on `invalid_action="empty"`, sized for the bench (`sizes` has
    `train_steps`, `learning_starts` and `eval_episodes`), evaluated every `eval_every` env
    steps (0: at the end only)."""
    from liveq.train.config import load_run_config

    data = load_yaml("livestream_default")
    data["env"]["kwargs"] = {**(data["env"].get("kwargs") or {}), "invalid_action": "empty"}
    data["train"].update(total_env_steps=sizes.train_steps, eval_every=eval_every,
                         checkpoint_every=0,
                         eval_episodes=sizes.eval_episodes, early_stopping_patience=0,
                         progress=False)
    if sizes.learning_starts is not None:
        data["agent"]["dqn"]["learning_starts"] = sizes.learning_starts
    return load_run_config(data)


def evaluate_return(policy, config, episodes: int) -> dict[str, float]:
    """Mean session return with its 95% interval, on the bench's seeded sessions."""
    env = make_vec_env(config.env.id, min(EVAL_ENVS, episodes), config.env.kwargs)
    try:
        summary = evaluate(lambda _: policy, env, episodes, EVAL_SEED)
    finally:
        env.close()
    return {key: summary["return"][key] for key in ("mean", "ci_low", "ci_high")}


def _throughput(env_steps: int, updates: int, seconds: float, batch_size: int) -> dict:
    return {"env_steps": env_steps, "updates": updates, "train_seconds": seconds,
            "env_steps_per_s": env_steps / seconds, "updates_per_s": updates / seconds,
            "batch_size": batch_size, "replayed_per_s": updates * batch_size / seconds}


def train_liveq(config) -> dict[str, Any]:
    """Train liveq's DQN in a temporary folder; its one evaluation is the bench's own.

    `train` evaluates at the end with the evaluator given; this one ignores the run's eval
    seed for `EVAL_SEED`, so SB3's policy meets the same sessions, and times itself so that
    evaluation is left out of the training time.
    """
    from liveq.train.loop import train

    record: dict[str, Any] = {}

    def evaluate_policy(policy, n_episodes: int, _run_seed: int) -> dict[str, float]:
        start = time.perf_counter()
        record["return"] = evaluate_return(policy, config, n_episodes)
        record["eval_seconds"] = time.perf_counter() - start
        return {"return": record["return"]["mean"]}

    with tempfile.TemporaryDirectory(prefix="liveq-bench-") as tmp:
        summary = train(config, Path(tmp) / "dqn", evaluate=evaluate_policy)
    seconds = summary["wall_time_s"] - record["eval_seconds"]
    return {**_throughput(summary["env_steps"], summary["updates"], seconds,
                          config.agent.dqn.batch_size), "return": record["return"]}


def train_stable_baselines(config) -> dict[str, Any]:
    """SB3's DQN on the same world, budget and torch threads, scored on the same sessions."""
    import torch

    from liveq.experiments.bench_sb3 import SB3GreedyPolicy, sb3_dqn_kwargs, train_sb3

    torch.set_num_threads(config.train.torch_threads)
    budget = config.train.total_env_steps
    run = train_sb3(budget, sb3_dqn_kwargs(budget, config.agent.dqn.learning_starts),
                    config.env.kwargs, config.seed)
    score = evaluate_return(SB3GreedyPolicy(run.model), config, config.train.eval_episodes)
    say("  SB3 resolved: " + ", ".join(f"{k} {v}" for k, v in run.settings.items()))
    return {**_throughput(run.env_steps, run.updates, run.seconds,
                          run.settings["batch_size"]), "return": score,
            "settings": run.settings}


def compare_returns(ours: dict[str, float], theirs: dict[str, float]) -> str:
    """"better", "worse" or "equal within CI", by the 95% interval of the difference."""
    half = math.hypot(ours["ci_high"] - ours["ci_low"], theirs["ci_high"] - theirs["ci_low"]) / 2
    difference = ours["mean"] - theirs["mean"]
    if difference - half > 0:
        return "better"
    if difference + half < 0:
        return "worse"
    return "equal within CI"


def _learner_line(name: str, figures: dict[str, Any]) -> str:
    r = figures["return"]
    return (f"  {name:<10} {figures['env_steps_per_s']:>9,.0f} env-steps/s  "
            f"{figures['updates_per_s']:>7,.1f} updates/s (batch {figures['batch_size']})  "
            f"return {r['mean']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]  "
            f"({figures['env_steps']:,} steps, {figures['updates']:,} updates in "
            f"{figures['train_seconds']:.1f}s)")


def _describe_learners(config) -> None:
    c, budget = config.agent.dqn, config.train.total_env_steps
    say(f"training: {budget:,} env steps per learner on the demo world with "
        f"invalid_action=empty, torch threads {config.train.torch_threads}; greedy return "
        f"over {config.train.eval_episodes} sessions (seed {EVAL_SEED}, 95% CI)")
    say(f"  liveq: demo config, {config.env.n_envs} envs, batch {c.batch_size}, "
        f"{c.gradient_steps} gradient steps every {c.train_freq} env steps, lr {c.lr}, "
        f"gamma {c.gamma}, learning_starts {c.learning_starts}, hidden {c.hidden_sizes}")
    say(f"  SB3:   DQN MultiInputPolicy, 1 env in a DummyVecEnv, SB3's default "
        f"hyper-parameters except buffer {budget:,} and learning_starts {c.learning_starts}")


def bench_training(sizes: BenchSizes) -> dict[str, Any]:
    import torch

    config = liveq_run_config(sizes)
    _describe_learners(config)
    threads_before = torch.get_num_threads()
    try:
        liveq = train_liveq(config)
        say(_learner_line("liveq DQN", liveq))
        sb3 = train_stable_baselines(config)
        say(_learner_line("SB3 DQN", sb3))
    finally:
        torch.set_num_threads(threads_before)
    speedup = liveq["env_steps_per_s"] / sb3["env_steps_per_s"]
    return {"env_steps_budget": config.train.total_env_steps,
            "eval_episodes": config.train.eval_episodes, "eval_seed": EVAL_SEED,
            "torch_threads": config.train.torch_threads,
            "liveq": liveq, "sb3": sb3, "speedup": speedup,
            "target": {"speedup": SPEEDUP_TARGET, "met": speedup >= SPEEDUP_TARGET},
            "return_verdict": compare_returns(liveq["return"], sb3["return"])}


# ------------------------------------------------------------------ report
def _met(flag: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured (--quick)"}[flag]


def summary_table(figures: dict[str, Any]) -> str:
    sim, tr = figures["simulator"], figures["training"]
    target = sim["target"]
    lines = ["", "summary", f"  {'simulator, one session (LiveStreamEnv)':<44}"
             f"{sim['single_env_steps_per_s']:>12,.0f} steps/s"]
    lines += [f"  {'simulator, batch ' + format(v['batch'], ','):<44}"
              f"{v['viewer_steps_per_s']:>12,.0f} viewer-steps/s" for v in sim["vector"]]
    lines.append(f"  target >= {target['viewer_steps_per_s']:,}/s at batch "
                 f"{target['batch']:,}: {_met(target['met'])}")
    for name, key in (("liveq DQN", "liveq"), ("SB3 DQN", "sb3")):
        f = tr[key]
        r = f["return"]
        lines.append(f"  {name + ' training':<44}{f['env_steps_per_s']:>12,.0f} env-steps/s  "
                     f"{f['updates_per_s']:>6,.1f} updates/s  return {r['mean']:.2f} "
                     f"±{(r['ci_high'] - r['ci_low']) / 2:.2f}")
    lines.append(f"  liveq / SB3 env-steps/s: {tr['speedup']:.1f}x (target "
                 f">= {SPEEDUP_TARGET:.0f}x: {_met(tr['target']['met'])}); liveq's return: "
                 f"{tr['return_verdict']}")
    return "\n".join(lines + log_lines(figures["logs"]))


def machine() -> dict[str, Any]:
    """CPUs and the 1-minute load average before the bench starts."""
    return {"cpus": os.cpu_count(), "load_avg_before": os.getloadavg()[0]}


def run_bench(quick: bool = False) -> dict[str, Any]:
    """Run every measurement, print the report, return the figures as plain JSON data."""
    sizes = QUICK if quick else FULL
    started = time.perf_counter()
    host = machine()
    say(f"liveq bench ({'quick' if quick else 'full'}): ratios are measured in this run; "
        "absolute figures depend on the machine's load")
    say(f"{host['cpus']} CPUs, load average before the bench {host['load_avg_before']:.2f}"
        + (" (other processes are busy: expect noisy figures)"
           if host["load_avg_before"] > 0.5 else ""))
    figures: dict[str, Any] = {"quick": quick, "machine": host,
                               "simulator": bench_simulator(sizes)}
    figures["scenarios"] = bench_scenarios(quick, sizes.repeats, say)
    say()
    figures["training"] = bench_training(sizes)
    figures["logs"] = bench_logs(sizes.log_rows)
    figures["wall_time_s"] = time.perf_counter() - started
    say(summary_table(figures))
    say(f"  bench wall time {figures['wall_time_s']:.0f}s")
    return figures
