"""What each `liveq` sub-command does (argument parsing lives in `liveq.cli.main`)."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import torch

from liveq.core.config import ConfigError, load_yaml
from liveq.core.report import (
    check_output_dir,
    check_output_file,
    format_table,
    save_json,
    write_csv,
    write_json,
)
from liveq.eval.online import evaluate, make_online_evaluator
from liveq.experiments.compare_offline import (
    behaviour_policy,
    gradient_budget,
    parse_behaviour,
    train_offline_run,
)
from liveq.sim.vector import make_vec_env
from liveq.train.config import RunConfig, load_run_config
from liveq.train.registry import ALGORITHMS, build_learner, derive_config

EVAL_ENVS = 64


def _config_data(path: str, args: argparse.Namespace) -> dict[str, Any]:
    data = load_yaml(path)
    train = data.setdefault("train", {})
    if not isinstance(train, dict):
        raise ConfigError(f"{path}: 'train' must be a mapping")
    if getattr(args, "steps", None) is not None:
        train["total_env_steps"] = args.steps
    if getattr(args, "no_progress", False):
        train["progress"] = False
    if getattr(args, "seed", None) is not None and args.command == "train":
        data["seed"] = args.seed
    return data


def is_livestream(config: RunConfig) -> bool:
    return config.env.id.startswith("liveq/LiveStream")


def evaluator_for(config: RunConfig):
    """The LiveStream online evaluator, or None to let training use its Gymnasium default."""
    if is_livestream(config):
        return make_online_evaluator(config.env.id, config.env.kwargs, EVAL_ENVS)
    return None


def train_run(config: RunConfig, out: str | Path, resume: bool) -> dict[str, Any]:
    from liveq.train.loop import train

    summary = train(config, out, resume=resume, evaluate=evaluator_for(config))
    print(f"trained {out}: {summary['env_steps']} env steps, {summary['updates']} updates, "
          f"best eval return {summary['best_return']:.3f} ({summary['stop_reason']}, "
          f"{summary['wall_time_s']:.0f}s)")
    return summary


def train_command(args: argparse.Namespace) -> int:
    check_outputs(args)
    config = load_run_config(_config_data(args.config, args))
    train_run(config, args.out, args.resume)
    return 0


def run_config(run: Path) -> RunConfig:
    """The resolved config saved in a run folder."""
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"{run} is not a run folder (no config.yaml)")
    return load_run_config(run / "config.yaml")


def load_greedy_policy(run: str | Path, checkpoint: str, env) -> Any:
    """The greedy policy of a trained run, built for `env`'s spaces."""
    from liveq.train.restore import load_run_agent

    run = Path(run)
    return load_run_agent(run, checkpoint, run_config(run), env).greedy_policy()


def _eval_env(config: RunConfig, episodes: int):
    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    return make_vec_env(config.env.id, min(EVAL_ENVS, episodes), config.env.kwargs)


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse unwritable output paths before any training or evaluation starts."""
    for flag in ("json", "csv"):
        check_output_file(getattr(args, flag, None), f"--{flag}", force=True,
                          make_parents=True)
    if getattr(args, "out", None) is not None:
        check_output_dir(args.out, "--out")


def _report(results: dict, args: argparse.Namespace) -> None:
    print(format_table(results))
    for path, write in ((args.json, write_json), (args.csv, write_csv)):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            write(results, path)


def eval_command(args: argparse.Namespace) -> int:
    check_outputs(args)
    torch.set_num_threads(1)  # small networks: one thread beats oversubscribed cores
    run = Path(args.run)
    config = run_config(run)
    env = _eval_env(config, args.episodes)
    policy = load_greedy_policy(run, args.checkpoint, env)
    results = {run.name: evaluate(lambda _: policy, env, args.episodes, args.seed)}
    _report(results, args)
    return 0


def online_learners() -> list[str]:
    """Registered algorithms that train by acting in the env."""
    return [name for name, spec in ALGORITHMS.items() if spec.loop is not None]


def _learner_config(config: RunConfig, name: str) -> RunConfig:
    """`config` training learner `name` with the settings it shares with the config's own
    agent (so myopic is the config's DQN with gamma 0)."""
    learner = copy.deepcopy(config)
    if name != config.agent.name:
        settings = derive_config(name, config.agent.settings)
        learner.agent = type(config.agent)(name=name, **{name: settings})
    return learner


def _check_learners_fit(config: RunConfig, names: list[str]) -> None:
    """Build each learner on the env's spaces before any training, so a learner that does
    not fit the env is refused up front instead of after the others have trained."""
    env = make_vec_env(config.env.id, 1, config.env.kwargs)
    try:
        for name in names:
            learner = _learner_config(config, name).agent
            try:
                build_learner(name, env.single_observation_space, env.single_action_space,
                              learner.settings, 0)
            except ConfigError as exc:
                raise ConfigError(f"--agents {name}: {exc}") from None
    finally:
        env.close()


def compare_command(args: argparse.Namespace) -> int:
    from liveq.policies.baselines import BASELINES, baseline_fits
    from liveq.policies.shop import baselines_for

    check_outputs(args)
    config = load_run_config(_config_data(args.config, args))
    table = baselines_for(config.env.id)
    torch.set_num_threads(config.train.torch_threads)
    names = [n.strip() for n in args.agents.split(",") if n.strip()]
    learners = [n for n in names if n in ALGORITHMS]
    unknown = [n for n in names if n not in ALGORITHMS and n not in table]
    if unknown or not names:
        raise ConfigError(f"--agents: unknown {unknown}; choose from "
                          f"{sorted([*ALGORITHMS, *table])}")
    offline = [n for n in learners if n not in online_learners()]
    if offline:
        behaviour = parse_behaviour(args.behaviour, table)[0]
        if table is BASELINES and not baseline_fits(behaviour, config.env.id):
            raise ConfigError(f"--behaviour: {behaviour} does not fit {config.env.id}")
    baselines = [n for n in names if n in table]
    misfit = [n for n in baselines if table is BASELINES and not baseline_fits(n, config.env.id)]
    if misfit:
        raise ConfigError(f"--agents: baselines {misfit} do not fit {config.env.id} (live-room "
                          "baselines need liveq/LiveRoom, ad baselines liveq/AdPlacement, the "
                          "others liveq/LiveStream)")
    _check_learners_fit(config, learners)
    _train_learners(config, learners, offline, args, table)
    results = {}
    for name in names:
        env = _eval_env(config, args.episodes)
        if name in learners:
            policy = load_greedy_policy(Path(args.out) / name, args.checkpoint, env)
            make = lambda _e, p=policy: p  # noqa: E731
        else:
            make = lambda e, n=name: table[n](e, args.seed)  # noqa: E731
        results[name] = evaluate(make, env, args.episodes, args.seed)
    if offline:  # what the offline learners' log came from, on the same sessions
        make = lambda e: behaviour_policy(args.behaviour, table, e, args.seed)  # noqa: E731
        results[f"behaviour {args.behaviour}"] = evaluate(
            make, _eval_env(config, args.episodes), args.episodes, args.seed)
    _report(results, args)
    return 0


def _train_learners(config: RunConfig, learners: list[str], offline: list[str],
                    args: argparse.Namespace, table: dict) -> None:
    """Train each learner into `--out/NAME` (a finished run there is kept): by acting, or
    for offline-only learners from a log of the `--behaviour` policy."""
    for name in learners:
        out = Path(args.out) / name
        finished = (out / "checkpoints" / "latest.pt").exists()
        if name in offline:
            if not finished:
                train_offline_run(_learner_config(config, name), name, out, args.behaviour,
                                  table, gradient_budget(config))
        else:
            train_run(_learner_config(config, name), out, resume=finished)


def bench_command(args: argparse.Namespace) -> int:
    from liveq.experiments.bench import run_bench

    check_outputs(args)
    figures = run_bench(quick=args.quick)
    if args.json:
        save_json(figures, args.json)
    return 0
