"""`liveq bench sb3`: liveq's DQN against SB3's DQN on SB3's defaults and on liveq's settings.

The plain `liveq bench` runs SB3 as it is usually run (one env, an update every 4 steps),
which a sceptic may call unfair: liveq's demo config steps 128 sessions at once and takes
8 gradient steps of batch 128 per 128 env steps. This suite trains three learners on the
same world (`invalid_action="empty"`), env-step budget and torch threads, one after the
other in one process:

* liveq: the demo config (the shipped `livestream_default`), as in `liveq bench`;
* SB3 default: `liveq.experiments.bench_sb3.sb3_dqn_kwargs`, as in `liveq bench`;
* SB3 like-for-like: liveq's hyper-parameters in SB3's units (`sb3_like_kwargs`) on as
  many envs through SB3's own `DummyVecEnv`; what SB3 cannot express is reported.

Each learner's greedy policy is evaluated every `eval_every` env steps on the same seeded
sessions (`liveq.experiments.bench.EVAL_SEED`); evaluation is left out of the training
time. The threshold is `THRESHOLD_FRACTION` of liveq's last evaluated return; each
learner's time to reach it is the training time at its first evaluation at or above it
(so it is known to within one evaluation interval), or None when it never does within the
budget. Ratios are against liveq in the same run.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liveq.experiments.bench import (
    EVAL_SEED,
    SPEEDUP_TARGET,
    evaluate_return,
    liveq_run_config,
    machine,
    say,
)

THRESHOLD_FRACTION = 0.8  # of liveq's last evaluated return
EVALUATIONS = 6  # evaluations during each learner's run
LEARNERS = {"liveq": "liveq DQN", "sb3_default": "SB3 default", "sb3_like": "SB3 like-for-like"}


@dataclass(frozen=True)
class FairSizes:
    """How much work the suite does; `learning_starts` None keeps the demo config's."""

    train_steps: int  # env-step budget of each learner
    learning_starts: int | None
    eval_episodes: int  # sessions per evaluation

    @property
    def eval_every(self) -> int:
        return max(1, self.train_steps // EVALUATIONS)


def fair_sizes(quick: bool, steps: int | None) -> FairSizes:
    """60,000 env steps and 256 sessions per evaluation (`quick`: 2,560 and 32); a budget
    `steps` under 12 x the demo's learning_starts starts learning after a tenth of it."""
    budget = steps if steps is not None else (2_560 if quick else 60_000)
    demo_starts = 5_000  # the shipped livestream_default config's learning_starts
    return FairSizes(train_steps=budget,
                     learning_starts=None if budget >= 12 * demo_starts else budget // 10,
                     eval_episodes=32 if quick else 256)


class Curve:
    """A learner's greedy returns on the bench's sessions, each with the env steps and
    training seconds (evaluations left out) at which it was measured."""

    def __init__(self, config: Any, episodes: int):
        self.config, self.episodes = config, episodes
        self.points: list[dict[str, float]] = []

    def record(self, policy: Any, env_steps: int, train_seconds: float) -> float:
        """Evaluate `policy` now; returns the seconds the evaluation took."""
        start = time.perf_counter()
        score = evaluate_return(policy, self.config, self.episodes)
        self.points.append({"env_steps": env_steps, "train_seconds": train_seconds, **score})
        return time.perf_counter() - start


def _figures(env_steps: int, updates: int, seconds: float, settings: dict[str, Any],
             curve: Curve, per_env_step: float) -> dict[str, Any]:
    return {"env_steps": env_steps, "updates": updates, "train_seconds": seconds,
            "env_steps_per_s": env_steps / seconds, "updates_per_s": updates / seconds,
            "updates_per_env_step": per_env_step, "settings": settings,
            "curve": curve.points, "return": curve.points[-1]}


def train_liveq_curve(config: Any, episodes: int) -> dict[str, Any]:
    """liveq's DQN with an evaluation every `config.train.eval_every` env steps."""
    from liveq.train.loop import Trainer, torch_threads

    curve, spent, trainer = Curve(config, episodes), [0.0], None

    def evaluate_policy(policy: Any, _episodes: int, _seed: int) -> dict[str, float]:
        elapsed = time.perf_counter() - trainer.started - spent[0]
        spent[0] += curve.record(policy, trainer.state.env_steps, elapsed)
        return {"return": curve.points[-1]["mean"]}

    with tempfile.TemporaryDirectory(prefix="liveq-bench-") as tmp, \
            torch_threads(config.train.torch_threads):
        trainer = Trainer(config, Path(tmp) / "dqn", resume=False, evaluate=evaluate_policy)
        summary = trainer.run()
    c, n_envs = config.agent.dqn, config.env.n_envs
    settings = {"n_envs": n_envs, "batch_size": c.batch_size, "learning_rate": c.lr,
                "gamma": c.gamma, "train_freq": c.train_freq,
                "gradient_steps": c.gradient_steps, "buffer_size": c.buffer_size,
                "learning_starts": c.learning_starts,
                "target_update_interval_updates": c.target_update_interval,
                "exploration_fraction": c.epsilon_fraction, "hidden_sizes": c.hidden_sizes,
                "parameters": sum(p.numel() for p in trainer.agent.q_net.parameters())}
    return _figures(summary["env_steps"], summary["updates"],
                    summary["wall_time_s"] - spent[0], settings, curve,
                    c.gradient_steps / c.train_freq)


def train_sb3_curve(config: Any, kwargs: dict[str, Any], n_envs: int,
                    episodes: int) -> dict[str, Any]:
    """SB3's DQN with `kwargs` on `n_envs` envs, evaluated like liveq's; the last
    evaluation is at the end of training."""
    from liveq.experiments.bench_sb3 import SB3GreedyPolicy, train_sb3
    from liveq.train.loop import crossed, torch_threads

    budget, every = config.train.total_env_steps, config.train.eval_every
    curve, last = Curve(config, episodes), [0]

    def on_step(model: Any, train_seconds: float) -> float:
        before, last[0] = last[0], int(model.num_timesteps)
        if last[0] >= budget or not crossed(before, last[0], every):
            return 0.0
        return curve.record(SB3GreedyPolicy(model), last[0], train_seconds)

    with torch_threads(config.train.torch_threads):
        run = train_sb3(budget, kwargs, config.env.kwargs, config.seed, n_envs, on_step)
        curve.record(SB3GreedyPolicy(run.model), run.env_steps, run.seconds)
    s = run.settings
    calls_per_copy = max(s["target_update_interval"] // n_envs, 1)  # SB3's own rounding
    settings = {**s, "target_update_interval_updates":
                calls_per_copy * s["gradient_steps"] / s["train_freq"]}
    return _figures(run.env_steps, run.updates, run.seconds, settings, curve,
                    s["gradient_steps"] / (s["train_freq"] * n_envs))


def reach(curve: list[dict[str, float]], threshold: float) -> dict[str, float] | None:
    """The first evaluation at or above `threshold` (its env steps and training seconds)."""
    for point in curve:
        if point["mean"] >= threshold:
            return {"env_steps": point["env_steps"], "train_seconds": point["train_seconds"]}
    return None


def _ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float | None]:
    """liveq's env-steps/s over theirs, and their time to the threshold over liveq's."""
    mine, other = ours["reached"], theirs["reached"]
    slower = None if mine is None or other is None else (
        other["train_seconds"] / max(mine["train_seconds"], 1e-9))
    return {"env_steps_per_s": ours["env_steps_per_s"] / theirs["env_steps_per_s"],
            "time_to_threshold": slower}


def run_bench_sb3(quick: bool = False, steps: int | None = None) -> dict[str, Any]:
    """Train the three learners, print the report, return the figures as plain JSON data."""
    from liveq.experiments.bench_sb3 import (
        UNMATCHED,
        config_unmatched,
        sb3_dqn_kwargs,
        sb3_like_kwargs,
    )

    sizes = fair_sizes(quick, steps)
    config = liveq_run_config(sizes, eval_every=sizes.eval_every)
    dqn, n_envs, episodes = config.agent.dqn, config.env.n_envs, sizes.eval_episodes
    started, host = time.perf_counter(), machine()
    _describe(config, sizes, host)
    runs = {"liveq": lambda: train_liveq_curve(config, episodes),
            "sb3_default": lambda: train_sb3_curve(
                config, sb3_dqn_kwargs(sizes.train_steps, dqn.learning_starts), 1, episodes),
            "sb3_like": lambda: train_sb3_curve(config, sb3_like_kwargs(dqn, n_envs), n_envs,
                                                episodes)}
    learners = {}
    for name, run in runs.items():
        learners[name] = run()
        say(f"  {LEARNERS[name]:<18} done: {_settings_line(learners[name]['settings'])}")
    threshold = THRESHOLD_FRACTION * learners["liveq"]["return"]["mean"]
    for figures in learners.values():
        figures["reached"] = reach(figures["curve"], threshold)
    ratios = {name: _ratios(learners["liveq"], learners[name])
              for name in ("sb3_default", "sb3_like")}
    speedup = ratios["sb3_default"]["env_steps_per_s"]
    figures = {"quick": quick, "machine": host, "env_steps_budget": sizes.train_steps,
               "eval_every": sizes.eval_every, "eval_episodes": episodes,
               "eval_seed": EVAL_SEED, "torch_threads": config.train.torch_threads,
               "threshold": {"fraction": THRESHOLD_FRACTION, "return": threshold},
               "learners": learners, "ratios": ratios,
               "unmatched": [*UNMATCHED, *config_unmatched(dqn)],
               "target": {"speedup": SPEEDUP_TARGET, "met": speedup >= SPEEDUP_TARGET},
               "wall_time_s": time.perf_counter() - started}
    say("\n".join(report_lines(figures)))
    return figures


def _settings_line(s: dict[str, Any]) -> str:
    arch = s.get("net_arch", s.get("hidden_sizes"))
    return (f"{s['n_envs']} envs, batch {s['batch_size']}, lr {s['learning_rate']:g}, gamma "
            f"{s['gamma']:g}, target copy every {s['target_update_interval_updates']:g} "
            f"updates, layers {arch}, {s['parameters']:,} parameters")


def _describe(config: Any, sizes: FairSizes, host: dict[str, Any]) -> None:
    say(f"liveq bench sb3: {sizes.train_steps:,} env steps per learner on the demo world "
        f"with invalid_action=empty, torch threads {config.train.torch_threads}, one after "
        "the other in this process; ratios are measured in this run")
    say(f"{host['cpus']} CPUs, load average before the bench {host['load_avg_before']:.2f}"
        + (" (other processes are busy: expect noisy figures)"
           if host["load_avg_before"] > 0.5 else ""))
    say(f"greedy return every {sizes.eval_every:,} env steps and at the end, over "
        f"{sizes.eval_episodes} sessions (seed {EVAL_SEED}, 95% CI); evaluation is not "
        "training time")


def _ratio(value: float) -> str:
    """Gradient steps per env step as 1/n when it is one."""
    inverse = 1.0 / value
    return f"1/{inverse:.0f}" if abs(inverse - round(inverse)) < 1e-9 else f"{value:.3g}"


def _reached(figures: dict[str, Any], budget: int) -> str:
    hit = figures["reached"]
    if hit is None:
        return f"not within {budget:,} steps"
    return f"{hit['train_seconds']:.1f} s ({hit['env_steps']:,} steps)"


def report_lines(figures: dict[str, Any]) -> list[str]:
    """The summary table, the ratios against liveq and what SB3 could not match."""
    threshold, budget = figures["threshold"], figures["env_steps_budget"]
    lines = ["", f"summary (threshold: {threshold['fraction']:.0%} of liveq's last return = "
             f"{threshold['return']:.2f})",
             f"  {'learner':<18} {'envs':>4} {'batch':>5} {'upd/step':>8} {'env-steps/s':>11} "
             f"{'liveq is':>8}  {'last return':<22} time to threshold"]
    for name, label in LEARNERS.items():
        f = figures["learners"][name]
        s, r = f["settings"], f["return"]
        speed = (figures["ratios"][name]["env_steps_per_s"] if name in figures["ratios"]
                 else 1.0)
        lines.append(f"  {label:<18} {s['n_envs']:>4} {s['batch_size']:>5} "
                     f"{_ratio(f['updates_per_env_step']):>8} {f['env_steps_per_s']:>11,.0f} "
                     f"{speed:>7.1f}x  {r['mean']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
                     f"{'':<3} {_reached(f, budget)}")
    for name in ("sb3_default", "sb3_like"):
        slower = figures["ratios"][name]["time_to_threshold"]
        lines.append(f"  {LEARNERS[name]}: takes "
                     + ("-" if slower is None else f"{slower:.1f}x")
                     + " liveq's training time to the threshold")
    target = figures["target"]
    lines.append(f"  liveq / SB3 default env-steps/s >= {target['speedup']:.0f}x: "
                 f"{'met' if target['met'] else 'MISSED'}")
    lines.append("  not matched in the like-for-like run:")
    lines += [f"    - {item}" for item in figures["unmatched"]]
    lines.append(f"  bench wall time {figures['wall_time_s']:.0f}s")
    return lines
