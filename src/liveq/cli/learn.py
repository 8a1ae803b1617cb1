"""`liveq learn` (a candidate from the service's log) and `liveq models` (list, register,
promote behind the session-level gate, roll back)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from liveq.core.report import text_table
from liveq.ope.gate import GateConfig, GateVerdict
from liveq.serving.db import open_log
from liveq.serving.join import load_join_config
from liveq.serving.learn import LearnRequest, learn
from liveq.serving.promotion import list_models, promote_gated, register_run, rollback


def learn_command(args: argparse.Namespace) -> int:
    request = LearnRequest(out=args.out, learner=args.learner, config=args.config,
                           gradient_steps=args.gradient_steps, seed=args.seed,
                           min_decisions=args.min_decisions)
    join = load_join_config(args.join)
    engine = open_log(args.db)
    try:
        summary = learn(engine, request, join)
    finally:
        engine.dispose()
    stats = summary["join"]
    print(f"learned {args.out}: {summary['learner']} on {summary['transitions']} transitions "
          f"({stats['sessions']} sessions of {stats['decisions']} decisions, "
          f"{stats['events_counted']} events counted, reward {stats['reward_sum']:.2f}), "
          f"{args.gradient_steps} gradient steps in {summary['wall_time_s']:.1f}s")
    return 0


def _when(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


def _list(engine) -> int:
    rows = [[r["version"], r["status"], _when(r["created_at"]), _when(r["promoted_at"]),
             _when(r["retired_at"]), (r.get("gate") or {}).get("verdict", "-")]
            for r in list_models(engine)]
    print(text_table(["version", "status", "created", "promoted", "retired", "last gate"],
                     rows))
    return 0


def _figure(interval: dict[str, float] | Any) -> str:
    return f"{interval.estimate:8.3f} [{interval.low:8.3f}, {interval.high:8.3f}]"


def print_verdict(verdict: GateVerdict) -> None:
    """Each estimator's value per session with its CI, the one-step figures, ESS."""
    print(f"{verdict.sessions} sessions, {verdict.steps} decisions; effective sessions: "
          + ", ".join(f"{k} {v:.1f}" for k, v in verdict.effective_sessions.items()))
    if verdict.difference:
        rows = [[name, _figure(verdict.live[name]), _figure(verdict.candidate[name]),
                 _figure(verdict.difference[name])] for name in verdict.difference]
        print(text_table(["per session", "live", "candidate", "candidate - live"], rows))
    if verdict.one_step:
        rows = [[name, f"{v['snips']:.4f}", f"{v['dr']:.4f}"]
                for name, v in verdict.one_step.items()]
        print(text_table(["one step (reward per decision)", "snips", "dr"], rows))
    print(f"verdict: {verdict.verdict} ({verdict.reason})")


def _promote(engine, args: argparse.Namespace) -> int:
    gate_config = GateConfig(min_sessions=args.min_sessions, margin=args.margin,
                             n_boot=args.bootstrap, seed=args.seed,
                             decide_by=args.decide_by.split(","))
    done = promote_gated(engine, args.run, gate_config, load_join_config(args.join),
                         args.target)
    print(f"candidate {done.version} against live {done.live_version}")
    print_verdict(done.verdict)
    if not done.promoted:
        print(f"liveq: error: promotion refused: {done.verdict.verdict}: "
              f"{done.verdict.reason}", file=sys.stderr)
        return 2
    print(f"promoted {done.version}")
    return 0


def models_command(args: argparse.Namespace) -> int:
    engine = open_log(args.db)
    try:
        if args.models_command == "list":
            return _list(engine)
        if args.models_command == "register":
            row = register_run(engine, args.run)
            print(f"registered {row['version']} ({row['status']})")
            return 0
        if args.models_command == "promote":
            return _promote(engine, args)
        row = rollback(engine)
        print(f"rolled back: {row['version']} is live")
        return 0
    finally:
        engine.dispose()
