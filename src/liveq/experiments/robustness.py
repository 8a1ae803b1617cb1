"""DQN against its myopic twin, the one-step oracle and popular-now on a family of worlds.

For each world of `liveq.experiments.world_family`, DQN and its myopic twin (the same
config with gamma 0) train with each of several seeds on the world's run config; each
run's policy (`--checkpoint`: `best` is chosen by the run's own evaluations, whose
sessions are disjoint from the report's; `latest` is the final one) then plays the same
seeded sessions as the baselines (common random numbers). A learner's entry is the mean
over seeds of the return per session with a 95% Student-t interval over seeds; a
baseline's is its mean with the interval over sessions.

    python -m liveq.experiments.robustness --worlds default,clicks_only --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
import yaml

from liveq.algos.dqn import DQNConfig
from liveq.core.config import ConfigError, from_dict, to_dict
from liveq.core.errors import LiveqError
from liveq.core.stats import difference_ci, mean_ci
from liveq.eval.online import evaluate, make_online_evaluator
from liveq.experiments.world_family import WORLDS, world_config
from liveq.policies.baselines import make_baseline
from liveq.sim.vector import make_vec_env
from liveq.train.config import RunConfig, load_run_config
from liveq.train.loop import train
from liveq.train.registry import derive_config
from liveq.train.restore import load_run_agent

LEARNERS = ("dqn", "myopic")
"""The learners run by default (the DQN-against-twin question)."""
KNOWN_LEARNERS = (*LEARNERS, "ppo")
"""Also `ppo`: PPO sharing the DQN settings it has (gamma, lr, network), as
`liveq compare --agents ppo` trains it, with `--ppo` overrides on top."""
BASELINES = ("oracle", "popular")
EVAL_SEED = 12345
EVAL_ENVS = 64


def learner_config(world: str, learner: str, seed: int, steps: int | None,
                   dqn: dict[str, Any], checkpoint: str = "best",
                   ppo: dict[str, Any] | None = None) -> RunConfig:
    """The run config of one learner and seed on `world`, with `dqn` overrides on the
    shared DQN settings (the myopic twin gets them too, with gamma pinned to 0; PPO takes
    the ones it has, as in `liveq compare`, then the `ppo` overrides). Only the finished
    run saves `latest` (so a folder holding it is a finished run); for
    `checkpoint="latest"` the run skips its evaluations, which only choose `best`."""
    if learner not in KNOWN_LEARNERS:
        raise ConfigError(f"unknown learner {learner!r}; choose from {list(KNOWN_LEARNERS)}")
    data = world_config(world)
    data["seed"] = seed
    settings = {**data.get("agent", {}).get("dqn", {}), **dqn}
    if learner == "myopic":
        settings["gamma"] = 0.0
    if learner == "ppo":
        shared = derive_config("ppo", from_dict(DQNConfig, settings, "agent.dqn"))
        settings = {**to_dict(shared), **(ppo or {})}
    data["agent"] = {"name": learner, learner: settings}
    train_section = data.setdefault("train", {})
    train_section.update(progress=False, checkpoint_every=0)
    if steps is not None:
        train_section["total_env_steps"] = steps
        if train_section.get("eval_every"):
            train_section["eval_every"] = max(steps // 5, 1)
    if checkpoint == "latest":
        train_section["eval_every"] = 0
    return load_run_config(data)


def learner_return(config: RunConfig, run: Path, checkpoint: str, episodes: int,
                   eval_seed: int = EVAL_SEED) -> float:
    """Mean return per session of the run's `checkpoint` policy on the shared sessions of
    the world `eval_seed` builds; trains the run first unless its folder already holds a
    finished one."""
    if not (run / "checkpoints" / "latest.pt").exists():
        train(config, run, evaluate=make_online_evaluator(config.env.id, config.env.kwargs,
                                                          EVAL_ENVS))
    env = make_vec_env(config.env.id, min(EVAL_ENVS, episodes), config.env.kwargs)
    policy = load_run_agent(run, checkpoint, config, env).greedy_policy()
    return evaluate(lambda _: policy, env, episodes, eval_seed)["return"]["mean"]


def baseline_entry(world: str, name: str, episodes: int,
                   eval_seed: int = EVAL_SEED) -> dict[str, Any]:
    config = load_run_config(world_config(world))
    env = make_vec_env(config.env.id, min(EVAL_ENVS, episodes), config.env.kwargs)
    r = evaluate(lambda e: make_baseline(name, e, eval_seed), env, episodes,
                 eval_seed)["return"]
    return {"returns": [], "mean": r["mean"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
            "n": int(r.get("n", episodes))}


def run_world(world: str, seeds: list[int], *, steps: int | None, episodes: int, out: Path,
              checkpoint: str = "best", dqn: dict[str, Any] | None = None,
              learners: tuple[str, ...] = LEARNERS, ppo: dict[str, Any] | None = None,
              eval_seed: int = EVAL_SEED) -> dict[str, Any]:
    """{agent: {"returns": per seed (learners), "mean", "ci_low", "ci_high"}}; finished
    runs in `out/<world>/<learner>/seed<k>` are reused (so another `eval_seed` only
    evaluates)."""
    results: dict[str, Any] = {}
    for learner in learners:
        returns = []
        for seed in seeds:
            config = learner_config(world, learner, seed, steps, dqn or {}, checkpoint, ppo)
            run = out / world / learner / f"seed{seed}"
            returns.append(learner_return(config, run, checkpoint, episodes, eval_seed))
            print(f"{world} {learner} seed {seed}: return/session {returns[-1]:.3f}",
                  flush=True)
        mean, low, high = mean_ci(returns)
        results[learner] = {"returns": returns, "mean": mean, "ci_low": low, "ci_high": high,
                            "n": len(returns), "seeds": list(seeds)}
    for name in BASELINES:
        results[name] = baseline_entry(world, name, episodes, eval_seed)
    if all(a in results for a in LEARNERS):
        diff = [d - m for d, m in zip(results["dqn"]["returns"], results["myopic"]["returns"],
                                      strict=True)]
        results["dqn_minus_myopic"] = dict(zip(("mean", "ci_low", "ci_high"), mean_ci(diff),
                                               strict=True))
    if "dqn" in results:
        results["dqn_minus_oracle"] = oracle_difference(results["dqn"], results["oracle"])
    return results


def oracle_difference(dqn: dict[str, Any], oracle: dict[str, Any]) -> dict[str, float]:
    """DQN's mean over seeds minus the oracle's over sessions, with the Welch interval of
    the difference (`liveq.core.stats.difference_ci`): the two estimates' errors combined,
    treated as independent (they share the sessions, so this is on the safe side)."""
    a, b = ((e["mean"], e["ci_low"], e["ci_high"], e["n"]) for e in (dqn, oracle))
    return dict(zip(("mean", "ci_low", "ci_high"), difference_ci(a, b), strict=True))


def verdict(r: dict[str, Any]) -> str:
    """DQN against its twin (paired over seeds: `above` when the interval of the difference
    is above 0, `below` when under it, else `level`) and against the one-step oracle (the
    Welch interval of DQN's mean over seeds minus the oracle's over sessions, read the same
    way)."""
    words = []
    if "dqn_minus_myopic" in r:
        d = r["dqn_minus_myopic"]
        words.append("above myopic" if d["ci_low"] > 0 else
                     "below myopic" if d["ci_high"] < 0 else "level with myopic")
    if "dqn_minus_oracle" in r:
        d = r["dqn_minus_oracle"]
        words.append("above oracle" if d["ci_low"] > 0 else
                     "below oracle" if d["ci_high"] < 0 else "level with oracle")
    return ", ".join(words)


def rescore(results: dict[str, dict[str, Any]], episodes: int) -> dict[str, dict[str, Any]]:
    """Saved results (`--json`, older files too) with DQN's intervals against its twin
    (paired by seed) and the oracle recomputed: a learner's `n` is its number of seeds, a
    baseline's `episodes` where the file does not say."""
    for r in results.values():
        for name, entry in r.items():
            if name in (*KNOWN_LEARNERS, *BASELINES):
                entry.setdefault("n", len(entry["returns"]) if name in KNOWN_LEARNERS
                                 else episodes)
        if "dqn" in r and "oracle" in r:
            r["dqn_minus_oracle"] = oracle_difference(r["dqn"], r["oracle"])
        if "dqn" in r and "myopic" in r:
            diff = [d - m for d, m in _paired(r["dqn"], r["myopic"])]
            r["dqn_minus_myopic"] = dict(zip(("mean", "ci_low", "ci_high"), mean_ci(diff),
                                             strict=True))
    return results


def _cell(r: dict[str, Any]) -> str:
    return f"{r['mean']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"


def table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown table: one row per world, learners with per-seed values (PPO's columns
    only when some world has it)."""
    learners = [*LEARNERS, *(["ppo"] if any("ppo" in r for r in results.values()) else [])]
    head = ["world", *learners, *BASELINES, "dqn - myopic, paired", "dqn - oracle", "verdict",
            *(f"{a} per seed" for a in learners)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for world, r in results.items():
        empty = {"returns": [], "mean": float("nan"), "ci_low": float("nan"),
                 "ci_high": float("nan")}
        cells = [world, *(_cell(r.get(a, empty)) for a in (*learners, *BASELINES))]
        cells += [_cell(r[k]) if k in r else "" for k in ("dqn_minus_myopic", "dqn_minus_oracle")]
        cells.append(verdict(r))
        cells += [", ".join(f"{x:.2f}" for x in r.get(a, empty)["returns"]) for a in learners]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paired(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[float, float]]:
    """(a's, b's) return for each seed both ran."""
    if "seeds" in a and "seeds" in b:
        by_seed = dict(zip(b["seeds"], b["returns"], strict=True))
        return [(x, by_seed[s]) for s, x in zip(a["seeds"], a["returns"], strict=True)
                if s in by_seed]
    return list(zip(a["returns"], b["returns"], strict=False))


def paired_table(results: dict[str, dict[str, Any]], against: dict[str, dict[str, Any]],
                 learner: str = "dqn") -> str:
    """Markdown table of `learner` in `results` against the same learner in `against`
    (another setting), per world both have: each mean with its interval over seeds, the
    difference paired by seed (the seeds both ran; files without seed numbers pair in
    order) and the oracle."""
    head = ["world", "this", "against", "this - against, paired", "seeds", "oracle"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for world, r in results.items():
        if learner not in r or learner not in against.get(world, {}):
            continue
        pairs = _paired(r[learner], against[world][learner])
        diff = dict(zip(("mean", "ci_low", "ci_high"), mean_ci([x - y for x, y in pairs]),
                        strict=True))
        cells = [world, _cell(r[learner]), _cell(against[world][learner]), _cell(diff),
                 str(len(pairs)),
                 _cell(r["oracle"]) if "oracle" in r else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`key=value` pairs (values parsed as YAML) for a learner's settings."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--dqn expects key=value, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


def load_results(paths: list[str], flag: str = "--from-json") -> dict[str, dict[str, Any]]:
    """The worlds of several `--json` files, merged per world (a later file's learner or
    baseline replaces an earlier one's, so one file's DQN and another's twin meet)."""
    results: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            for world, entries in json.loads(Path(path).read_text()).items():
                results.setdefault(world, {}).update(entries)
        except (OSError, ValueError, AttributeError, TypeError) as err:
            raise ConfigError(f"{flag} {path}: cannot read results ({err})") from err
    return results


def main(argv: list[str] | None = None) -> None:
    try:
        run(argv)
    except LiveqError as err:
        raise SystemExit(f"robustness: error: {err}") from None


def run(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worlds", default=",".join(WORLDS), help=f"from {', '.join(WORLDS)}")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--steps", type=int, help="override train.total_env_steps")
    p.add_argument("--episodes", type=int, default=1_000)
    p.add_argument("--checkpoint", choices=("best", "latest"), default="best")
    p.add_argument("--dqn", nargs="*", default=[], help="DQN setting overrides key=value")
    p.add_argument("--ppo", nargs="*", default=[], help="PPO setting overrides key=value")
    p.add_argument("--learners", default=",".join(LEARNERS),
                   help=f"from {', '.join(KNOWN_LEARNERS)}")
    p.add_argument("--eval-seed", type=int, default=EVAL_SEED,
                   help="the evaluation world's seed (finished runs are only re-evaluated)")
    p.add_argument("--out", default="runs/robustness")
    p.add_argument("--json")
    p.add_argument("--from-json", nargs="+", metavar="FILE",
                   help="print the table of saved --json results instead of running")
    p.add_argument("--against", nargs="+", metavar="FILE",
                   help="with --from-json: DQN there against DQN in these saved results, "
                        "paired by seed")
    args = p.parse_args(argv)
    if args.from_json:
        results = rescore(load_results(args.from_json), args.episodes)
        print(table(results) if not args.against else
              paired_table(results, load_results(args.against, "--against")))
        return
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    dqn, ppo = parse_overrides(args.dqn), parse_overrides(args.ppo)
    results = {w: run_world(w, seeds, steps=args.steps, episodes=args.episodes,
                            out=Path(args.out), checkpoint=args.checkpoint, dqn=dqn,
                            learners=tuple(args.learners.split(",")), ppo=ppo,
                            eval_seed=args.eval_seed)
               for w in args.worlds.split(",")}
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
