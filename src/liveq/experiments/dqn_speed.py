"""liveq's DQN training throughput alone, on `liveq bench`'s training setup, for A/B timing.

`liveq bench` times liveq and SB3 once each; a change to the learner's speed needs more:
several DQN variants timed in turns (round robin, so a busy machine slows each alike),
the CPU seconds beside the wall time (less sensitive to other processes on the cores),
and a fingerprint of the final weights, which shows whether two code versions or two
variants train bit for bit the same network.

    python -m liveq.experiments.dqn_speed --steps 60000 --repeats 3 \\
        --variant demo= --variant plain=reward_head=false,policy_average=0,gamma=0.9

Each variant is `name=` followed by comma-separated DQN overrides (YAML values) on the
demo config as `liveq bench` runs it (`invalid_action: empty`, the config's torch
threads). Training time covers `Trainer.run` less its one closing evaluation, which is
skipped here (a stub scores the policy 0): env steps, replay, updates and the last
checkpoint, as in the bench.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from liveq.core.config import ConfigError
from liveq.experiments.bench import liveq_run_config
from liveq.experiments.robustness import parse_overrides
from liveq.train.loop import Trainer, torch_threads


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """`name=key=value,key=value` (or `name=` for the demo config as it is)."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise ConfigError(f"--variant expects name=key=value,..., got {text!r}")
    return name, parse_overrides([item for item in rest.split(",") if item])


def weights_fingerprint(agent: Any) -> str:
    """The first 16 hex digits of a SHA-256 over every network tensor of the agent."""
    digest = hashlib.sha256()
    state = agent.state_dict()
    for part in ("q_net", "target_net", "average"):
        for tensor in state.get(part, {}).values():
            digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:16]


def time_once(steps: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """Train the bench's liveq DQN once with `overrides`; its speed and fingerprint."""
    config = liveq_run_config(SimpleNamespace(train_steps=steps, learning_starts=None,
                                              eval_episodes=1))
    for key, value in overrides.items():
        if not hasattr(config.agent.dqn, key):
            raise ConfigError(f"--variant: DQN has no setting {key!r}")
        setattr(config.agent.dqn, key, value)
    config.agent.dqn.validate()
    with tempfile.TemporaryDirectory(prefix="liveq-speed-") as tmp, \
            torch_threads(config.train.torch_threads):
        trainer = Trainer(config, Path(tmp) / "run", resume=False,
                          evaluate=lambda policy, episodes, seed: {"return": 0.0})
        wall, cpu = time.perf_counter(), time.process_time()
        summary = trainer.run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {"env_steps": summary["env_steps"], "updates": summary["updates"],
                "wall_s": wall, "cpu_s": cpu, "env_steps_per_s": summary["env_steps"] / wall,
                "env_steps_per_cpu_s": summary["env_steps"] / cpu,
                "weights": weights_fingerprint(trainer.agent)}


def run(variants: list[tuple[str, dict[str, Any]]], steps: int,
        repeats: int) -> dict[str, list[dict[str, Any]]]:
    """Every variant `repeats` times, in turns; prints each run as it ends."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
    for repeat in range(repeats):
        for name, overrides in variants:
            figures = time_once(steps, overrides)
            runs[name].append(figures)
            print(f"  {name:<12} run {repeat + 1}: {figures['env_steps_per_s']:>7,.0f} "
                  f"env-steps/s, {figures['env_steps_per_cpu_s']:>7,.0f} per CPU second, "
                  f"{figures['updates']:,} updates, weights {figures['weights']}", flush=True)
    return runs


def summary_lines(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = ["variant       median env-steps/s   median per CPU second   weights"]
    for name, figures in runs.items():
        wall = statistics.median(f["env_steps_per_s"] for f in figures)
        cpu = statistics.median(f["env_steps_per_cpu_s"] for f in figures)
        prints = sorted({f["weights"] for f in figures})
        lines.append(f"{name:<12}  {wall:>18,.0f}   {cpu:>21,.0f}   {', '.join(prints)}")
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60_000, help="env steps per run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variant", action="append", default=[],
                   help="name=key=value,... DQN overrides (repeatable; default: demo=)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        raise ConfigError("--steps and --repeats must be at least 1")
    variants = [parse_variant(text) for text in args.variant or ["demo="]]
    torch.set_num_threads(1)
    print(f"liveq DQN training throughput, {args.steps:,} env steps, {args.repeats} "
          "repeats per variant in turns")
    print("\n".join(summary_lines(run(variants, args.steps, args.repeats))))


if __name__ == "__main__":
    main()
