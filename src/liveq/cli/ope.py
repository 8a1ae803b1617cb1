"""`liveq ope {sim,obd,offline-rl}`: off-policy estimates beside the truth: table, JSON, CSV.

`sim` logs a behaviour policy in the simulator and reports each estimator's bias, RMSE and
interval coverage over seeds against the exact expected reward; `obd` evaluates Bernoulli
TS on the Open Bandit random log against the BTS log's own mean click, with obp 0.4.1's
figures for the same setup beside ours; `offline-rl` trains DQN, BC and a bandit from a
simulator log alone and reports their online return beside their off-policy estimates
(`liveq.experiments.offline_rl_sim`); `gate` proves the promotion gate: verdicts over
seeds and each session-level estimate beside the online truth
(`liveq.experiments.gate_sim`).
"""

from __future__ import annotations

import argparse
import csv
from typing import Any

import numpy as np

from liveq.core.config import ConfigError, to_dict
from liveq.core.errors import UsageError
from liveq.core.report import (
    check_output_dir,
    check_output_file,
    format_table,
    save_json,
    text_table,
)
from liveq.ope.estimators import EstimatorConfig
from liveq.train.registry import derive_config

SIM_ONLY = ("seeds", "sessions", "steps", "behaviour", "targets")
OBD_ONLY = ("campaign", "n_sim", "obp_check")
OFFLINE_RL_ONLY = ("config", "learners", "gradient_steps", "cql_alpha", "soften",
                   "heldout_steps", "episodes", "no_online_dqn")
GATE_ONLY = ("out", "dqn_run", "myopic_run", "epsilon", "small_sessions", "truth_runs",
             "train_steps", "min_sessions", "margin", "decide_by")


def _estimator_config(args: argparse.Namespace, n_boot: int) -> EstimatorConfig:
    config = EstimatorConfig(clip=args.clip, switch_tau=args.switch_tau, n_folds=args.folds,
                             n_boot=n_boot if args.bootstrap is None else args.bootstrap)
    config.validate()
    return config


def _reject_foreign(args: argparse.Namespace, names: tuple[str, ...]) -> None:
    given = [n for n in names if getattr(args, n) not in (None, False)]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise UsageError(f"{flags} do(es) not apply to `liveq ope {args.source}`")


def _write(result: dict[str, Any], rows: list[dict], args: argparse.Namespace) -> None:
    if args.json:
        save_json(result, args.json)
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
    return text_table(header, rows, left=2)


def _sim(args: argparse.Namespace) -> dict[str, Any]:
    from liveq.experiments.ope_sim import SimOPEConfig, run_sim

    _reject_foreign(args, OBD_ONLY + OFFLINE_RL_ONLY + GATE_ONLY)
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
    return text_table(header, body)


def _obd(args: argparse.Namespace) -> dict[str, Any]:
    from liveq.experiments.ope_obd import OBDConfig, evaluate, obp_same_inputs, prepare

    _reject_foreign(args, SIM_ONLY + OFFLINE_RL_ONLY + GATE_ONLY)
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


# ------------------------------------------------------------------ offline-rl
def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def offline_rl_config(args: argparse.Namespace):
    """The `OfflineRLConfig` of these arguments (and of the run config `--config`)."""
    from liveq.experiments.offline_rl_sim import OfflineRLConfig
    from liveq.train.config import load_run_config

    config = OfflineRLConfig(estimators=_estimator_config(args, n_boot=200))
    if args.config is not None:
        run = load_run_config(args.config)
        if not run.env.id.startswith("liveq/LiveStream"):
            raise ConfigError(f"{args.config}: offline-rl needs a liveq/LiveStream env, "
                              f"not {run.env.id}")
        config.env, config.dqn = dict(run.env.kwargs), derive_config("dqn", run.agent.settings)
    for name in ("sessions", "steps", "behaviour", "gradient_steps", "cql_alpha", "soften",
                 "heldout_steps", "episodes"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    if args.learners is not None:
        config.learners = _names(args.learners)
    if args.targets is not None:
        config.references = _names(args.targets)
    config.online_dqn = not args.no_online_dqn
    config.validate()
    return config


def offline_rl_table(rows: list[dict], support: dict[str, dict[str, float]]) -> str:
    """Per target: truth, each estimate with its relative error, ESS share, unsupported mass."""
    estimators = list(dict.fromkeys(r["estimator"] for r in rows))
    by_target: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_target.setdefault(r["target"], {})[r["estimator"]] = r
    header = ["target", "truth", *estimators, "ESS", "no support"]
    body = []
    for target, cells in by_target.items():
        truth = next(iter(cells.values()))["truth"]
        estimates = [cells[e]["estimate"] for e in estimators]
        body.append([target, f"{truth:.4f}",
                     *(f"{v:.4f} ({100 * (v / truth - 1):+.1f}%)" for v in estimates),
                     f"{100 * support[target]['ess_share']:.0f}%",
                     f"{100 * support[target]['unsupported']:.0f}%"])
    return text_table(header, body)


def _offline_rl_rows(result: dict[str, Any]) -> list[dict]:
    """CSV rows: every online metric and every OPE estimate, one per (policy, measure)."""
    rows = [{"policy": policy, "measure": f"online:{metric}", "estimate": e["mean"],
             "ci_low": e["ci_low"], "ci_high": e["ci_high"], "truth": None}
            for policy, metrics in result["online"].items() for metric, e in metrics.items()]
    rows += [{"policy": r["target"], "measure": f"ope:{r['estimator']}",
              "estimate": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
              "truth": r["truth"]} for r in result["ope"]]
    return rows


def _offline_rl(args: argparse.Namespace) -> dict[str, Any]:
    from liveq.experiments.offline_rl_sim import run_offline_rl

    _reject_foreign(args, OBD_ONLY + GATE_ONLY + ("seeds",))
    config = offline_rl_config(args)
    result = run_offline_rl(config, args.seed)
    log = result["log"]
    print(f"liveq ope offline-rl: behaviour {config.behaviour} logged {log['transitions']} "
          f"transitions ({config.sessions} sessions x {config.steps} steps, "
          f"{log['sessions_ended']} sessions ended); {', '.join(config.learners)} learned "
          f"from that log alone, {config.gradient_steps} gradient steps each")
    for name, stats in result["training"].items():
        print(f"  {name}: loss {stats['loss_first']:.3f} -> {stats['loss_last']:.3f}, "
              f"mean Q of logged actions {stats['q_mean_last']:.3f}")
    print(f"\nonline: {config.episodes} sessions per policy on a fresh world (same seed for "
          "all); mean ± half-width of the 95% interval")
    print(format_table(result["online"]))
    print(f"\noff-policy, on a held-out log of {result['heldout_rounds']} rounds: estimates "
          "of the expected immediate reward per step (relative error); truth = exact, "
          "from the simulator; ESS = effective sample size of the importance weights; no "
          "support = the target's probability on actions the behaviour never takes")
    print(offline_rl_table(result["ope"], result["support"]))
    _write({"source": "offline-rl", "seed": args.seed, "config": to_dict(config), **result},
           _offline_rl_rows(result), args)
    return result


# ------------------------------------------------------------------ gate
def gate_config(args: argparse.Namespace):
    """The `GateSimConfig` of these arguments."""
    from liveq.experiments.gate_sim import GateSimConfig

    config = GateSimConfig()
    for name in ("seeds", "sessions", "epsilon", "small_sessions", "truth_runs",
                 "train_steps"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    config.runs = {name: path for name, path in (("dqn", args.dqn_run),
                                                 ("myopic", args.myopic_run)) if path}
    for name in ("min_sessions", "margin"):
        if getattr(args, name) is not None:
            setattr(config.gate, name, getattr(args, name))
    if args.bootstrap is not None:
        config.gate.n_boot = args.bootstrap
    if args.decide_by is not None:
        config.gate.decide_by = _names(args.decide_by)
    config.validate()
    return config


def gate_tables(result: dict[str, Any]) -> tuple[str, str]:
    """The verdicts per scenario over seeds; each estimate beside the online truth."""
    verdicts = []
    for name in dict.fromkeys(r["scenario"] for r in result["rows"]):
        rows = [r for r in result["rows"] if r["scenario"] == name]
        first = rows[0]
        verdicts.append([name, f"{first['live_policy']} -> {first['candidate_policy']}",
                         str(first["sessions"]), ", ".join(r["verdict"] for r in rows)])
    table = text_table(["scenario", "live -> candidate", "sessions", "verdict per seed"],
                       verdicts)
    errors = []
    for s in result["summary"]:
        rows = [r for r in result["rows"] if r["scenario"] == s["scenario"]]
        one = np.mean([r["one_step"][s["role"]]["dr"] for r in rows])
        errors.append([s["scenario"], f"{s['role']} {s['policy']}", s["estimator"],
                       f"{s['truth']:.2f}", f"{s['estimate']:.2f}", f"{s['bias']:+.2f}",
                       f"{s['rmse']:.2f}", f"{one:.3f}"])
    return table, text_table(["log", "policy", "estimator", "truth", "estimate", "bias",
                              "RMSE", "one-step DR"], errors)


def _gate(args: argparse.Namespace) -> dict[str, Any]:
    from liveq.experiments.gate_sim import run_gate_sim

    _reject_foreign(args, OBD_ONLY + ("steps", "behaviour", "targets", "config", "learners",
                                      "gradient_steps", "cql_alpha", "soften",
                                      "heldout_steps", "episodes", "no_online_dqn"))
    config = gate_config(args)
    out = args.out or "liveq-gate"
    check_output_dir(out, "--out")
    result = run_gate_sim(config, args.seed, out)
    print(f"liveq ope gate: {config.seeds} seeds; logs of the live policy served with "
          f"{config.epsilon:g} uniform exploration; truth = online return per session in "
          f"the logs' window ({config.truth_runs} runs per policy and seed); the gate "
          f"decides by {', '.join(config.gate.decide_by)}")
    verdicts, errors = gate_tables(result)
    print(verdicts)
    print("\nsession value estimates (return per session) beside the truth, mean over seeds; "
          "one-step DR = estimated reward of the next step")
    print(errors)
    spread = {name: np.mean([t[f"{name}_run_sd"] for t in result["truth"]])
              for name in ("dqn", "myopic")}
    print(f"\none window's mean return strays from the truth by (sd over runs): dqn "
          f"{spread['dqn']:.2f}, myopic {spread['myopic']:.2f}; the truth's own error is "
          f"that / sqrt({config.truth_runs})")
    print("ranks DQN above myopic on: " + "; ".join(
        f"{name} {c['dqn_first']}/{c['logs']} logs" for name, c in result["ranking"].items()))
    flat = [{k: v for k, v in r.items() if not isinstance(v, dict)} for r in result["rows"]]
    _write({"source": "gate", "seed": args.seed, "config": to_dict(config), **result}, flat,
           args)
    return result


SOURCES = {"sim": _sim, "obd": _obd, "offline-rl": _offline_rl, "gate": _gate}


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse what would fail only after the run: a bad output path or replicate count."""
    if args.bootstrap is not None and args.bootstrap < 10:
        raise UsageError(f"--bootstrap must be at least 10 replicates, got {args.bootstrap}")
    check_output_file(args.json, "--json", force=True)
    check_output_file(args.csv, "--csv", force=True)


def ope_command(args: argparse.Namespace) -> int:
    """Run `liveq ope sim`, `obd`, `offline-rl` or `gate`; 0 on success."""
    check_arguments(args)
    SOURCES[args.source](args)
    return 0
