"""`liveq ab`: a simulated A/B test, printed as a table (and saved as JSON with --json)."""

from __future__ import annotations

import argparse

from liveq.core.config import from_dict
from liveq.core.report import check_output_file, save_json


def ab_command(args: argparse.Namespace) -> int:
    from liveq.experiments.ab import ABConfig, report_lines, run_ab

    check_output_file(args.json, "--json", force=True, make_parents=True)
    cfg = from_dict(ABConfig, {
        "control": args.control, "treatment": args.treatment, "config": args.config,
        "viewers": args.viewers, "days": args.days, "share": args.share, "mde": args.mde,
        "seed": args.seed}, "ab")
    result = run_ab(cfg)
    print("\n".join(report_lines(result)), flush=True)
    if args.json:
        save_json(result, args.json)
    return 0
