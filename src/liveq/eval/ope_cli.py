"""`liveq ope {sim,obd}`: off-policy estimates beside the truth, as a table, JSON and CSV.

`sim` logs a behaviour policy in the simulator and reports each estimator's bias, RMSE and
interval coverage over seeds against the exact expected reward; `obd` evaluates Bernoulli
TS on the Open Bandit random log against the BTS log's own mean click, with obp 0.4.1's
figures for the same setup beside ours.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from liveq.cli import UsageError
from liveq.config import to_dict
from liveq.eval.ope import EstimatorConfig

SIM_ONLY = ("seeds", "sessions", "steps", "behaviour", "targets")
OBD_ONLY = ("campaign", "n_sim", "obp_check")


def _estimator_config(args: argparse.Namespace, n_boot: int) -> EstimatorConfig:
    config = EstimatorConfig(clip=args.clip, switch_tau=args.switch_tau, n_folds=args.folds,
                             n_boot=args.bootstrap or n_boot)
    config.validate()
    return config


def _reject_foreign(args: argparse.Namespace, names: tuple[str, ...]) -> None:
    given = [n for n in names if getattr(args, n) not in (None, False)]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise UsageError(f"{flags} do(es) not apply to `liveq ope {args.source}`")


def format_table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """Fixed-width text: the first `left` columns left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < left else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in [header, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _write(result: dict[str, Any], rows: list[dict], args: argparse.Namespace) -> None:
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


# ------------------------------------------------------------------ sim
def sim_table(summary: list[dict], per_seed: list[dict]) -> str:
    """Bias, RMSE and coverage over seeds; then seed 0's truth, estimate and interval."""
    first = {(r["target"], r["estimator"]): r for r in per_seed if r["seed"] == 0}
    header = ["target", "estimator", "mean truth", "bias", "RMSE", "rel RMSE", "CI covers",
              "seed 0 truth", "seed 0 estimate [95% CI]"]
    rows = []
    for s in summary:
        f = first[(s["target"], s["estimator"])]
        rows.append([s["target"], s["estimator"], f"{s['truth']:.4f}", f"{s['bias']:+.4f}",
                     f"{s['rmse']:.4f}", f"{100 * s['relative_rmse']:.1f}%",
                     f"{round(s['coverage'] * s['seeds'])}/{s['seeds']}", f"{f['truth']:.4f}",
                     f"{f['estimate']:.4f} [{f['ci_low']:.4f}, {f['ci_high']:.4f}]"])
    return format_table(header, rows, left=2)


def _sim(args: argparse.Namespace) -> dict[str, Any]:
    from liveq.eval.ope_sim import SimOPEConfig, run_sim

    _reject_foreign(args, OBD_ONLY)
    config = SimOPEConfig(estimators=_estimator_config(args, n_boot=200))
    for name in ("seeds", "sessions", "steps", "behaviour"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    if args.targets is not None:
        config.targets = [t for t in args.targets.split(",") if t.strip()]
    result = run_sim(config, args.seed)
    rounds = result["rounds"]
    print(f"liveq ope sim: behaviour {config.behaviour}, {config.seeds} seeds x "
          f"{min(rounds)}-{max(rounds)} logged rounds ({config.sessions} sessions x "
          f"{config.steps} steps); truth = exact expected reward at the logged states")
    print(sim_table(result["summary"], result["per_seed"]))
    _write({"source": "sim", "seed": args.seed, "config": to_dict(config), **result},
           result["summary"], args)
    return result


# ------------------------------------------------------------------ obd
def obd_table(rows: list[dict]) -> str:
    """Our estimates with intervals and relative errors, beside obp's own figures."""
    header = ["estimator", "estimate", "95% CI", "truth", "rel error", "obp 0.4.1"]
    body = [[r["estimator"], f"{r['estimate']:.5f}", f"[{r['ci_low']:.5f}, {r['ci_high']:.5f}]",
             f"{r['truth']:.5f}", f"{100 * r['relative_error']:+.1f}%",
             "-" if r["obp_reference"] is None else f"{r['obp_reference']:.5f}"]
            for r in rows]
    return format_table(header, body)


def _obd(args: argparse.Namespace) -> dict[str, Any]:
    from liveq.eval.ope_obd import OBDConfig, evaluate, obp_same_inputs, prepare

    _reject_foreign(args, SIM_ONLY)
    config = OBDConfig(campaign=args.campaign or "all",
                       estimators=_estimator_config(args, n_boot=1000))
    if args.n_sim is not None:
        config.n_sim = args.n_sim
    config.validate()
    inputs = prepare(config, args.seed)
    rows = evaluate(inputs, config, args.seed)
    print(f"liveq ope obd: Bernoulli TS evaluated on the uniform-random log (campaign "
          f"{config.campaign}, {len(inputs.log.action)} rounds); truth = mean click of the "
          f"BTS log, {inputs.truth:.5f} ± {inputs.truth_half_width:.5f} (95%). "
          f"obp 0.4.1 = obp's own pipeline (its logistic regression, 3 folds)")
    print(obd_table(rows))
    result: dict[str, Any] = {"source": "obd", "seed": args.seed, "config": to_dict(config),
                              "truth_half_width": inputs.truth_half_width, "rows": rows}
    if args.obp_check:
        theirs = obp_same_inputs(inputs, config)
        ours = {r["estimator"]: r["estimate"] for r in rows}
        gap = max(abs(ours[k] - v) for k, v in theirs.items())
        print(f"obp's estimators on the same inputs ({', '.join(theirs)}): "
              f"largest difference {gap:.1e}")
        result["obp_same_inputs"] = theirs
    _write(result, rows, args)
    return result


def ope_command(args: argparse.Namespace) -> int:
    """Run `liveq ope sim` or `liveq ope obd`; 0 on success."""
    (_sim if args.source == "sim" else _obd)(args)
    return 0
