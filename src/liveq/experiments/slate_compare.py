"""SlateQ against one-item rankers on a ranked-list world (slate_size > 1, position bias).

Learners: `slateq` (item values plus a learnt position-biased choice model, exact slate
optimisation), `slateq_topk` (the same with the paper's top-k slate heuristic), `dqn`
(top-k by item Q-value, learnt for the slate's first item) and `myopic` (the same DQN
with gamma 0: top-k by myopic score); baselines: `popular` and the one-step `oracle`
(top-k by the simulator's true expected immediate reward, reading hidden state). The
learners share the config's settings and budget (each takes every field it has in
common with the config's agent section, `liveq.train.registry.derive_config`). For
each seed every learner trains with that seed and its FINAL greedy policy plays the
seed's evaluation sessions, which every policy plays alike (common random numbers), so
the baselines' spread over seeds is that of the evaluation worlds. The table
gives the mean over seeds of the return per session with a 95% Student-t interval, and
SlateQ's paired lead over each policy (its return minus the policy's on the same seed),
with the same kind of interval: the worlds' spread cancels there.

    python -m liveq.experiments.slate_compare --config livestream_slate --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from liveq.core.config import load_yaml, to_dict
from liveq.core.stats import mean_ci
from liveq.eval.online import evaluate
from liveq.policies.baselines import make_baseline
from liveq.sim.vector import make_vec_env
from liveq.train.config import load_run_config
from liveq.train.loop import train
from liveq.train.registry import derive_config
from liveq.train.restore import load_run_agent

# run name -> (algorithm, settings changed from the config's agent section)
LEARNERS: dict[str, tuple[str, dict[str, Any]]] = {
    "slateq": ("slateq", {}),
    "slateq_topk": ("slateq", {"slate_optimizer": "topk"}),
    "dqn": ("dqn", {}),
    "myopic": ("myopic", {}),
}
BASELINES = ("popular", "oracle")
EVAL_SEED = 20_000  # evaluation sessions of seed s: EVAL_SEED + s
EVAL_ENVS = 64


def learner_config(base: dict[str, Any], name: str, seed: int, steps: int,
                   changes: dict[str, Any] | None = None):
    """The run config of learner `name`: the base's agent settings carried over to it
    with `changes`, evaluated only at the end, no intermediate checkpoints."""
    data = json.loads(json.dumps(base))
    data["seed"] = seed
    data.setdefault("train", {}).update(total_env_steps=steps, eval_every=0,
                                        checkpoint_every=0, progress=False)
    source = load_run_config(data).agent
    settings = derive_config(name, source.settings, **(changes or {}))
    data["agent"] = {"name": name, name: to_dict(settings)}
    return load_run_config(data)


def final_return(make_policy, config: Any, seed: int, episodes: int) -> float:
    """Mean return per session of `make_policy(env)` on seed `seed`'s evaluation sessions."""
    env = make_vec_env(config.env.id, min(EVAL_ENVS, episodes), config.env.kwargs)
    try:
        return evaluate(make_policy, env, episodes, EVAL_SEED + seed)["return"]["mean"]
    finally:
        env.close()


def seed_returns(base: dict[str, Any], seed: int, steps: int, episodes: int,
                 out: Path) -> dict[str, float]:
    """Every learner and baseline's return per session for one seed (runs reused from `out`)."""
    returns = {}
    for name, (algorithm, changes) in LEARNERS.items():
        config = learner_config(base, algorithm, seed, steps, changes)
        run = out / name / f"seed{seed}"
        if not (run / "checkpoints" / "latest.pt").exists():
            train(config, run)
        make = lambda env, r=run, c=config: load_run_agent(r, "latest", c, env).greedy_policy()  # noqa: E731
        returns[name] = final_return(make, config, seed, episodes)
    config = learner_config(base, "slateq", seed, steps)
    for name in BASELINES:
        make = lambda env, n=name: make_baseline(n, env, seed)  # noqa: E731
        returns[name] = final_return(make, config, seed, episodes)
    return returns


def run_compare(config: str, seeds: list[int], steps: int, episodes: int,
                out: Path) -> dict[str, dict[str, Any]]:
    """{policy: {"returns": per seed, "mean", "ci_low", "ci_high"}}."""
    base = load_yaml(config)
    per_seed = []
    for seed in seeds:
        per_seed.append(seed_returns(base, seed, steps, episodes, out))
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.2f}" for k, v in per_seed[-1].items()),
              flush=True)
    results = {}
    for name in (*LEARNERS, *BASELINES):
        returns = [r[name] for r in per_seed]
        lead = [r["slateq"] - r[name] for r in per_seed]
        mean, low, high = mean_ci(returns)
        results[name] = {"returns": returns, "mean": mean, "ci_low": low, "ci_high": high,
                         "slateq_lead": mean_ci(lead)}
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| policy | return/session [95% CI over seeds] | slateq minus it [95% CI] "
             "| per seed |", "|---|---|---|---|"]
    for name, r in results.items():
        seeds = ", ".join(f"{x:.2f}" for x in r["returns"])
        lead = "" if name == "slateq" else "{:+.2f} [{:+.2f}, {:+.2f}]".format(
            *r["slateq_lead"])
        lines.append(f"| {name} | {r['mean']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] "
                     f"| {lead} | {seeds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="livestream_slate")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--steps", type=int, default=40_000)
    p.add_argument("--episodes", type=int, default=500)
    p.add_argument("--out", default="runs/slate_compare")
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = run_compare(args.config, seeds, args.steps, args.episodes, Path(args.out))
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
