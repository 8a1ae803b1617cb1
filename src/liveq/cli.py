"""The `liveq` command line: train, eval, compare, bench.

Usage errors (bad configs, missing or corrupted checkpoints, invalid arguments) print
one line `liveq: error: ...` and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from liveq.config import ConfigError


class UsageError(Exception):
    """A mistake in what the user asked for."""


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train an agent from a YAML run config")
    p.add_argument("--config", required=True, help="run config YAML")
    p.add_argument("--out", required=True, help="run folder to create (or resume)")
    p.add_argument("--resume", action="store_true", help="continue from checkpoints/latest.pt")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--steps", type=int, help="override train.total_env_steps")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run online in its simulator")
    p.add_argument("run", help="run folder written by `liveq train`")
    p.add_argument("--episodes", type=int, default=1000, help="sessions to evaluate")
    p.add_argument("--checkpoint", choices=("best", "latest"), default="best")
    p.add_argument("--seed", type=int, default=12345, help="evaluation seed")
    p.add_argument("--json", help="write results as JSON")
    p.add_argument("--csv", help="write results as CSV")


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="train learners and compare them with baselines")
    p.add_argument("--config", required=True, help="run config YAML (DQN settings and env)")
    p.add_argument("--agents", default="dqn,myopic,oracle,popular,repeat,random",
                   help="comma-separated: dqn, myopic, oracle, popular, repeat, random")
    p.add_argument("--episodes", type=int, default=2000, help="sessions per agent")
    p.add_argument("--out", default="runs/compare", help="folder for the learners' runs")
    p.add_argument("--seed", type=int, default=12345, help="evaluation seed (shared)")
    p.add_argument("--steps", type=int, help="override train.total_env_steps")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--json", help="write results as JSON")
    p.add_argument("--csv", help="write results as CSV")


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="simulator and training throughput, with SB3 beside it")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument("--json", help="write figures as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveq", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_eval, _add_compare, _add_bench):
        add(sub)
    return parser


def _commands() -> dict[str, Callable[[argparse.Namespace], int]]:
    from liveq import commands

    return {"train": commands.train_command, "eval": commands.eval_command,
            "compare": commands.compare_command, "bench": commands.bench_command}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from liveq.sim.core import InvalidActionError
    from liveq.train.checkpoint import CheckpointError

    try:
        return _commands()[args.command](args)
    except (ConfigError, CheckpointError, InvalidActionError, UsageError,
            FileNotFoundError) as exc:
        print(f"liveq: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("liveq: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
