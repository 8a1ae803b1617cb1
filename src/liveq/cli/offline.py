"""`liveq eval-offline LOG`: rank live streamers on a log with POP, REP, BPR, logged-Q models.

Prints the test table (the headline) and validation's all-target row per model; `--json`
writes everything `run_protocol` returns (seed, tie-breaking rule, split points, target
counts, repeat ratio, metrics with 95% intervals, timings); `--csv` one row per
(split, model, subset, metric).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

from liveq.core.config import ConfigError, load_yaml, to_dict
from liveq.core.errors import UsageError
from liveq.core.report import check_output_file, save_json, text_table
from liveq.ranking.liverec import COMPAT, offline_models
from liveq.ranking.protocol import METRICS, SUBSETS
from liveq.ranking.queries import OfflineModel


def compat_mode(text: str) -> str:
    """`--compat`: liveq's definitions or the LiveRec code's (`liveq.ranking.liverec`)."""
    if text not in COMPAT:
        raise UsageError(f"unknown --compat value {text!r}; choose from {', '.join(COMPAT)}")
    return text


def model_names(text: str) -> list[str]:
    """The comma-separated `--models` list, checked against the registry, duplicates dropped."""
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise UsageError("--models names no model")
    unknown = [n for n in names if n not in offline_models()]
    if unknown:
        raise UsageError(f"unknown model(s) {', '.join(unknown)} in --models; "
                         f"choose from {', '.join(offline_models())}")
    return names


def model_settings(path: str | None, names: list[str]) -> dict[str, dict]:
    """`--model-config`: a YAML mapping of model name -> that model's config fields."""
    if path is None:
        return {}
    settings = load_yaml(path) or {}
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: expected a mapping of model name to settings")
    unused = [name for name in settings if name not in names]
    if unused:
        raise ConfigError(f"{path}: settings for model(s) {', '.join(map(str, unused))} "
                          f"that --models does not run ({', '.join(names)})")
    return settings


def build_models(names: list[str], settings: dict[str, dict] | None = None,
                 compat: str = "liveq") -> dict[str, OfflineModel]:
    registry = offline_models(compat)
    models = {}
    for name in names:
        try:
            models[name] = registry[name]((settings or {}).get(name))
        except ImportError as exc:
            raise UsageError(f"model {name!r} is not available here: {exc}") from exc
    return models


def _table(rows: list[list[str]]) -> str:
    return text_table(["model", "targets", "n", *METRICS], rows, left=2)


def _cells(model: str, subset: str, entries: dict) -> list[str]:
    values = [entries[m]["mean"] for m in METRICS]
    return [model, subset, str(entries[METRICS[0]]["n"]),
            *("-" if math.isnan(v) else f"{v:.4f}" for v in values)]


def format_result(result: dict) -> str:
    """Header lines, the test table (all / repeat / new per model), validation's all row."""
    lines = [f"protocol {result['protocol']}, seed {result['seed']}; {result['tie_breaking']}",
             "split points: " + ", ".join(f"{k}={v}" for k, v in
                                           result["split_points"].items() if k != "rule"),
             f"training rows: {result['n_training_rows']}; fit seconds: " + ", ".join(
                 f"{name} {seconds:.1f}" for name, seconds in result["fit_seconds"].items())]
    if result.get("compat") == "liverec":
        lines.append("compat liverec: the LiveRec code's POP (training rows), REP (history "
                     "without its last item, no viewer order) and repeat rule (target in "
                     "the history without its first item)")
    for split, subsets in (("test", SUBSETS), ("validation", ("all",))):
        info = result["splits"].get(split)
        if info is None:
            continue
        lines += ["", f"{split}: {info['n_targets']} targets ({info['n_repeat']} repeat, "
                      f"{info['n_new']} new; repeat ratio {info['repeat_ratio']:.3f})",
                  _availability_note(result["availability"], info)]
        rows = [_cells(model if i == 0 else "", subset, metrics[subset])
                for model, metrics in info["models"].items()
                for i, subset in enumerate(subsets)]
        lines.append(_table(rows))
    return "\n".join(lines)


def _availability_note(availability: str, info: dict) -> str:
    share = info["self_only_target_share"]
    if availability == "others":
        return (f"availability: other users' rows only; {info['dropped_targets']} targets "
                f"({share:.1%}) dropped because no other user watched their streamer then")
    note = (f"availability: the whole log; {share:.1%} of targets are live only through "
            "the target's own row")
    if share > 0.05:
        note += (" (a model can find them from 'no other viewer' alone: compare with "
                 "--availability others)")
    return note


def write_result_json(result: dict, path: str | Path) -> None:
    save_json(result, path)


def write_result_csv(result: dict, path: str | Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "model", "subset", "metric", "mean", "ci_low", "ci_high", "n"])
        for split, info in result["splits"].items():
            for model, metrics in info["models"].items():
                for subset, entries in metrics.items():
                    for metric, e in entries.items():
                        writer.writerow([split, model, subset, metric, e["mean"], e["ci_low"],
                                         e["ci_high"], e["n"]])


def eval_offline_command(args: argparse.Namespace) -> int:
    from liveq.data import load_log
    from liveq.ranking.protocol import run_protocol

    compat = compat_mode(args.compat)
    names = model_names(args.models)
    check_output_file(args.json, "--json", force=True)
    check_output_file(args.csv, "--csv", force=True)
    log = load_log(args.log, format=args.format, schema=args.schema,
                   on_bad_rows=args.on_bad_rows)
    models = build_models(names, model_settings(args.model_config, names), compat)
    if "bpr" in models:
        import torch

        # The entry point owns the process: BPR's small sparse updates run fastest on one
        # thread, and the library leaves torch's settings alone.
        torch.set_num_threads(1)
    result = run_protocol(log, models, protocol=args.protocol, seed=args.seed,
                          availability=args.availability, compat=compat)
    result = {"log": {"source": log.source, "rows": log.frame.height, "users": log.n_users,
                      "streamers": log.n_items, "step_minutes": log.step_minutes},
              "headline": "test", **result,
              "model_settings": {name: to_dict(model.config) for name, model in models.items()
                                 if hasattr(model, "config")}}
    print(format_result(result))
    for split, info in result["splits"].items():
        if info["n_targets"] == 0:
            print(f"liveq: warning: the {split} split has no targets: its metrics are NaN "
                  "(null in --json)", file=sys.stderr)
    if args.json:
        write_result_json(result, args.json)
    if args.csv:
        write_result_csv(result, args.csv)
    return 0
