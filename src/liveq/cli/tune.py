"""`liveq tune`: hyperparameter search over a family of worlds (Optuna or Ray Tune)."""

from __future__ import annotations

import argparse

from liveq.core.config import from_dict
from liveq.core.report import check_output_dir


def tune_command(args: argparse.Namespace) -> int:
    import optuna

    from liveq.experiments.tune import TuneConfig, tune

    check_output_dir(args.out, "--out")
    worlds = [w.strip() for w in args.worlds.split(",") if w.strip()] if args.worlds else []
    cfg = from_dict(TuneConfig, {
        "config": args.config, "space": args.space, "worlds": worlds, "trials": args.trials,
        "out": args.out, "storage": args.storage, "study_name": args.study_name,
        "seed": args.seed, "steps": args.steps, "backend": args.backend,
        "address": args.address, "prune": not args.no_prune}, "tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # liveq prints one line a trial
    tune(cfg, say=lambda line: print(line, flush=True))
    return 0
