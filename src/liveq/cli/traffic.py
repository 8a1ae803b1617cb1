"""`liveq traffic` (simulated viewers against a running service) and `liveq bench serve`."""

from __future__ import annotations

import argparse

from liveq.core.config import from_dict
from liveq.core.report import check_output_file, save_json


def traffic_command(args: argparse.Namespace) -> int:
    from liveq.experiments.traffic import TrafficConfig, run_traffic, summary_lines

    check_output_file(args.truth, "--truth", force=True, make_parents=True)
    cfg = from_dict(TrafficConfig, {
        "url": args.url, "config": args.config, "days": args.days, "sessions": args.sessions,
        "seed": args.seed, "api_key": args.api_key, "concurrency": args.concurrency,
        "retrieval": args.retrieval, "refresh_every": args.refresh_every,
        "retry_for_s": args.retry_for}, "traffic")
    summary = run_traffic(cfg)
    print("\n".join(summary_lines(summary)), flush=True)
    if args.truth:
        save_json(summary, args.truth)
        print(f"  truth              {args.truth}")
    return 0


def bench_serve_command(args: argparse.Namespace) -> int:
    from liveq.experiments.bench_serve import run_bench_serve

    check_output_file(args.json, "--json", force=True, make_parents=True)
    figures = run_bench_serve(quick=args.quick, model=args.model,
                              workers=args.workers)
    if args.json:
        save_json(figures, args.json)
    return 0
