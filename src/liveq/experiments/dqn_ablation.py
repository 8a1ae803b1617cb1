"""Ablation of DQN's switches: plain, +dueling, +n-step, +prioritized, all three.

Every variant trains from the same run config and budget with each of several seeds, and
its FINAL greedy policy (not the best checkpoint, so no variant is helped by a lucky
evaluation) plays the same seeded sessions. The table gives, per variant, the mean over
seeds of the return per session with a 95% Student-t interval over seeds, so it shows
how much the result moves from one training run to the next.

The world runs with `invalid_action: empty`: on the small world a session can find no
live candidate at all (every slot masked), and then any action is "invalid"; showing
nothing is the only sensible reading, and it is the same for every variant.

    python -m liveq.experiments.dqn_ablation --config livestream_small --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from liveq.core.config import load_yaml
from liveq.core.stats import mean_ci
from liveq.eval.online import evaluate
from liveq.sim.vector import make_vec_env
from liveq.train.config import load_run_config
from liveq.train.loop import train
from liveq.train.restore import load_run_agent

VARIANTS: dict[str, dict[str, Any]] = {
    "dqn": {},
    "+dueling": {"dueling": True},
    "+n_step 3": {"n_step": 3},
    "+prioritized": {"prioritized": True},
    "all three": {"dueling": True, "n_step": 3, "prioritized": True},
}
EVAL_SEED = 12345
EVAL_ENVS = 64


def variant_config(base: dict[str, Any], switches: dict[str, Any], seed: int, steps: int):
    """The run config of one variant and seed: the base with the switches on, evaluated
    only at the end, no intermediate checkpoints."""
    data = json.loads(json.dumps(base))
    data["seed"] = seed
    data.setdefault("agent", {}).setdefault("dqn", {}).update(switches)
    data["agent"]["name"] = "dqn"
    data.setdefault("env", {}).setdefault("kwargs", {})["invalid_action"] = "empty"
    data.setdefault("train", {}).update(total_env_steps=steps, eval_every=0,
                                        checkpoint_every=0, progress=False)
    return load_run_config(data)


def final_return(run: Path, config: Any, episodes: int) -> float:
    """Mean return per session of the run's final greedy policy on the shared sessions."""
    env = make_vec_env(config.env.id, min(EVAL_ENVS, episodes), config.env.kwargs)
    policy = load_run_agent(run, "latest", config, env).greedy_policy()
    return evaluate(lambda _: policy, env, episodes, EVAL_SEED)["return"]["mean"]


def run_ablation(config: str, seeds: list[int], steps: int, episodes: int,
                 out: Path) -> dict[str, dict[str, Any]]:
    """{variant: {"returns": per seed, "mean", "ci_low", "ci_high"}}; runs reused from `out`."""
    base = load_yaml(config)
    results = {}
    for name, switches in VARIANTS.items():
        returns = []
        for seed in seeds:
            run_config = variant_config(base, switches, seed, steps)
            run = out / name.replace(" ", "_").replace("+", "") / f"seed{seed}"
            if not (run / "checkpoints" / "latest.pt").exists():
                train(run_config, run)
            returns.append(final_return(run, run_config, episodes))
            print(f"{name} seed {seed}: return/session {returns[-1]:.3f}", flush=True)
        mean, low, high = mean_ci(returns)
        results[name] = {"returns": returns, "mean": mean, "ci_low": low, "ci_high": high}
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| variant | return/session [95% CI over seeds] | per seed |", "|---|---|---|"]
    for name, r in results.items():
        seeds = ", ".join(f"{x:.2f}" for x in r["returns"])
        lines.append(f"| {name} | {r['mean']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] "
                     f"| {seeds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="livestream_small")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--steps", type=int, default=30_000)
    p.add_argument("--episodes", type=int, default=1_000)
    p.add_argument("--out", default="runs/dqn_ablation")
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = run_ablation(args.config, seeds, args.steps, args.episodes, Path(args.out))
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
