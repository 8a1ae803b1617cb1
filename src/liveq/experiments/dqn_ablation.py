"""Ablation of DQN's switches: plain, +dueling, +n-step, +prioritized, all three.

Every variant trains from the same run config and budget with each of several seeds, and
its FINAL greedy policy (not the best checkpoint, so no variant is helped by a lucky
evaluation) plays the same seeded sessions. The table gives, per variant, the mean over
seeds of the return per session with a 95% Student-t interval over seeds, so it shows
how much the result moves from one training run to the next, and the paired difference
to plain DQN (same seed, same sessions: most of the world-to-world noise cancels).

Each variant sets all three switches and turns `reward_head` and `policy_average` off,
so "dqn" is plain DQN whatever the config's own switches; every other setting (gamma,
learning rate, schedule, network) is the config's. `--worlds` runs
the ablation on worlds of `liveq.experiments.world_family` (the demo config with other
simulator settings) instead of one `--config`; `--dqn key=value ...` overrides the config's
DQN settings for every variant (the switches above still win).

The worlds run with `invalid_action: empty`: on the small world a session can find no
live candidate at all (every slot masked), and then any action is "invalid"; showing
nothing is the only sensible reading, and it is the same for every variant.

    python -m liveq.experiments.dqn_ablation --config livestream_small --seeds 0,1,2,3,4
    python -m liveq.experiments.dqn_ablation --worlds default,clicks_only --dqn gamma=0.9
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch

from liveq.core.config import load_yaml
from liveq.core.stats import mean_ci
from liveq.eval.online import evaluate
from liveq.experiments.robustness import parse_overrides
from liveq.experiments.world_family import world_config
from liveq.sim.vector import make_vec_env
from liveq.train.config import load_run_config
from liveq.train.loop import train
from liveq.train.restore import load_run_agent

_NONE = {"dueling": False, "n_step": 1, "prioritized": False, "reward_head": False,
         "policy_average": 0.0}
VARIANTS: dict[str, dict[str, Any]] = {
    "dqn": _NONE,
    "+dueling": {**_NONE, "dueling": True},
    "+n_step 3": {**_NONE, "n_step": 3},
    "+prioritized": {**_NONE, "prioritized": True},
    "all three": {**_NONE, "dueling": True, "n_step": 3, "prioritized": True},
}
"""Variant name -> the switches it sets (the same keys in every variant)."""
BASELINE = "dqn"
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


def _summary(returns: list[float], baseline: list[float] | None) -> dict[str, Any]:
    mean, low, high = mean_ci(returns)
    entry: dict[str, Any] = {"returns": returns, "mean": mean, "ci_low": low,
                             "ci_high": high}
    if baseline is not None:
        diff = [r - b for r, b in zip(returns, baseline, strict=True)]
        entry["minus_dqn"] = dict(zip(("mean", "ci_low", "ci_high"), mean_ci(diff),
                                      strict=True))
    return entry


def run_ablation(base: dict[str, Any] | str, seeds: list[int], steps: int, episodes: int,
                 out: Path, label: str = "", dqn: dict[str, Any] | None = None
                 ) -> dict[str, dict[str, Any]]:
    """{variant: {"returns": per seed, "mean", "ci_low", "ci_high"[, "minus_dqn"]}} on the
    run-config dict `base` (or a config name) with `dqn` overrides on its DQN settings;
    finished runs are reused from `out`."""
    base = json.loads(json.dumps(load_yaml(base) if isinstance(base, str) else base))
    base.setdefault("agent", {}).setdefault("dqn", {}).update(dqn or {})
    results: dict[str, dict[str, Any]] = {}
    for name, switches in VARIANTS.items():
        returns = []
        for seed in seeds:
            run_config = variant_config(base, switches, seed, steps)
            run = out / name.replace(" ", "_").replace("+", "") / f"seed{seed}"
            if not (run / "checkpoints" / "latest.pt").exists():
                train(run_config, run)
            returns.append(final_return(run, run_config, episodes))
            print(f"{label}{name} seed {seed}: return/session {returns[-1]:.3f}", flush=True)
        plain = results[BASELINE]["returns"] if name != BASELINE else None
        results[name] = _summary(returns, plain)
    return results


def _interval(r: dict[str, Any], sign: str = "") -> str:
    if any(math.isnan(r[k]) for k in ("ci_low", "ci_high")):
        return f"{r['mean']:{sign}.2f}"
    return f"{r['mean']:{sign}.2f} [{r['ci_low']:{sign}.2f}, {r['ci_high']:{sign}.2f}]"


def table(results: dict[str, dict[str, Any]], world: str | None = None) -> str:
    """Markdown table, one row per variant (a leading world column when `world` is given)."""
    head = ["variant", "return/session [95% CI over seeds]", "minus dqn, paired [95% CI]",
            "per seed"]
    head = ["world", *head] if world else head
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        diff = _interval(r["minus_dqn"], "+") if "minus_dqn" in r else ""
        cells = [name, _interval(r), diff, ", ".join(f"{x:.2f}" for x in r["returns"])]
        lines.append("| " + " | ".join([world, *cells] if world else cells) + " |")
    return "\n".join(lines)


def worlds_table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One markdown table over worlds: {world: run_ablation's result}."""
    tables = [table(r, world).splitlines() for world, r in results.items()]
    return "\n".join(tables[0][:2] + [row for t in tables for row in t[2:]])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="livestream_small")
    p.add_argument("--worlds", help="comma-separated worlds of the family, instead of --config")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--steps", type=int, default=30_000)
    p.add_argument("--episodes", type=int, default=1_000)
    p.add_argument("--out", default="runs/dqn_ablation")
    p.add_argument("--dqn", nargs="*", default=[], help="DQN setting overrides key=value")
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    dqn = parse_overrides(args.dqn)
    if args.worlds is None:
        results: dict[str, Any] = run_ablation(args.config, seeds, args.steps, args.episodes,
                                               Path(args.out), dqn=dqn)
        print(table(results))
    else:
        results = {w: run_ablation(world_config(w), seeds, args.steps, args.episodes,
                                   Path(args.out) / w, label=f"{w} ", dqn=dqn)
                   for w in args.worlds.split(",")}
        print(worlds_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
