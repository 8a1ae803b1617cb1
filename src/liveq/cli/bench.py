"""`liveq bench sb3`: liveq's DQN beside SB3's, on SB3's defaults and on liveq's settings."""

from __future__ import annotations

import argparse

from liveq.core.errors import UsageError
from liveq.core.report import check_output_file, save_json


def bench_sb3_command(args: argparse.Namespace) -> int:
    from liveq.experiments.bench_fair import run_bench_sb3

    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be at least 1, got {args.steps}")
    check_output_file(args.json, "--json", force=True, make_parents=True)
    figures = run_bench_sb3(quick=args.quick, steps=args.steps)
    if args.json:
        save_json(figures, args.json)
    return 0
