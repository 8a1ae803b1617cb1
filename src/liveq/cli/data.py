"""`liveq data synth|calibrate|analyze`: the command-line side of liveq.data."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml

from liveq.cli.shop_synth import shop_config, shop_synth
from liveq.core.config import ConfigError, from_dict, load_yaml
from liveq.core.errors import UsageError
from liveq.core.report import check_output_dir, check_output_file
from liveq.data.analyze import FIGURES, analyze_log, write_analysis
from liveq.data.calibrate import calibrate, config_yaml, format_table
from liveq.data.load import load_log
from liveq.data.synth import simulate_rows, write_rows
from liveq.sim.config import LiveStreamConfig


def simulator_config(path: str) -> LiveStreamConfig:
    """The simulator settings in `path`: a simulator config (LiveStreamConfig fields, as
    `data calibrate` writes) or a run config, whose `env.kwargs` are taken."""
    data = load_yaml(path)
    if not isinstance(data.get("env"), dict):
        return from_dict(LiveStreamConfig, data)
    env_id = data["env"].get("id", "")
    if not str(env_id).startswith("liveq/LiveStream"):
        raise ConfigError(f"{path}: a run config for {env_id!r}; synthetic logs come from "
                          "the liveq/LiveStream simulator")
    return from_dict(LiveStreamConfig, data["env"].get("kwargs") or {}, "env.kwargs")


def synth_command(args: argparse.Namespace) -> int:
    """`liveq data synth`: simulate, write, and print a one-line summary."""
    began = time.perf_counter()
    _check_synth_out(Path(args.out), args.format, args.force)
    shop = shop_config(args.config) if args.config else None
    if shop is not None:  # a run config for liveq/Ecommerce-v0
        return shop_synth(args, shop)
    cfg = simulator_config(args.config) if args.config else LiveStreamConfig()
    raw = simulate_rows(cfg, policy=args.policy, epsilon=args.epsilon,
                        sessions=args.sessions, days=args.days, seed=args.seed,
                        return_after_days=args.return_after_days)
    note = write_rows(raw, args.format, args.out, cfg.step_minutes)
    steps = int(raw["stop"].max() - raw["start"].min()) if raw.height else 0
    print(f"wrote {args.out} ({args.format}{note}): {raw.height} rows, {raw['user'].n_unique()} "
          f"users, {raw['item'].n_unique()} streamers, {steps} steps of "
          f"{cfg.step_minutes:g} min, {time.perf_counter() - began:.1f} s")
    return 0


def _check_synth_out(out: Path, format: str, force: bool) -> None:
    """A KuaiLive log is a folder of CSV files; the other formats are one file (generic
    writes its schema YAML beside it)."""
    if format == "kuailive":
        check_output_dir(out, "--out")
        if (out / "click.csv").exists() and not force:
            raise UsageError(f"--out {out} already holds a log (click.csv); pass --force to "
                             "overwrite it")
        return
    check_output_file(out, "--out", force=force, make_parents=True)
    if format == "generic":
        check_output_file(out.with_suffix(".schema.yaml"), "--out's schema", force=force,
                          make_parents=True)


def calibrate_command(args) -> int:
    began = time.perf_counter()
    check_output_file(args.out, "--out", force=args.force)
    log = load_log(args.log, args.format, args.schema, args.on_bad_rows)
    result = calibrate(log, seed=args.seed)
    text = config_yaml(result, str(args.log), str(args.out))
    from_dict(LiveStreamConfig, yaml.safe_load(text))  # what we write must load back
    Path(args.out).write_text(text)
    print(f"{log.source}: log's first {result.days:g} days beside {result.days:g} simulated "
          f"days of the fitted config")
    print(format_table(result))
    print(f"wrote {args.out} ({time.perf_counter() - began:.1f} s)")
    return 0


def analyze_command(args) -> int:
    check_output_dir(args.out, "--out")
    log = load_log(args.log, args.format, args.schema, args.on_bad_rows)
    summary, figures = analyze_log(log, args.churn_days, args.seed)
    out = Path(args.out)
    write_analysis(summary, figures, out)
    churn, ret = summary["churn"], summary["retention"]["first_day_cohort"]
    print(f"{log.source}: {log.n_users} viewers, {log.n_items} streamers, "
          f"{summary['log']['whole_days']} whole days")
    print("first-day cohort active k days later: "
          + " ".join("-" if r is None else f"{r:.2f}" for r in ret))
    print(f"churn after {args.churn_days:g} days away: AUC {churn['auc']:.3f} on "
          f"{churn['test_rows']} viewers (days-since-last-visit alone {churn['recency_auc']:.3f}); "
          f"churn rate {churn['test_churn_rate']:.2f}")
    print(f"repeat ratio {summary['repeat_ratio']:.3f}; wrote summary.json and "
          f"{len(FIGURES)} plots to {out}")
    return 0
