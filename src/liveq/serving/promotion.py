"""`liveq models`: list, register, promote behind the session-level gate, roll back.

`promote_gated` joins the log (`liveq.serving.join`), loads the live model and the
candidate (`liveq.serving.model.load_model`) and reads both policies' full distributions
at every logged state as they would serve: each decision's own logged exploration
settings around the model's greedy ranking (`target: greedy` judges the bare greedy
policies instead). `liveq.ope.gate.gate` compares them on the same sessions (on a log of
slates, `liveq.ope.slate_gate.slate_gate` with their slate probabilities); only
"promote" makes the candidate live. The verdict is stored on the candidate's row
(`models.gate`) either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, update

from liveq.core.errors import CheckpointError, LogError, UsageError
from liveq.ope.gate import NOT_ENOUGH, PROMOTE, GateConfig, GateVerdict, gate
from liveq.ope.sessions import Sessions, with_forced
from liveq.serving import store
from liveq.serving.join import JoinConfig, JoinedLog, join_log
from liveq.serving.model import ServedModel, load_model, serving_policy
from liveq.serving.slate_targets import judge_slates
from liveq.serving.tables import models

TARGETS = ("served", "greedy")


@dataclass
class Promotion:
    """What `promote_gated` did."""

    version: str
    live_version: str | None
    verdict: GateVerdict
    promoted: bool


def register_run(engine: Engine, run: str) -> dict[str, Any]:
    """Register a run folder as a candidate (checked by loading it)."""
    model = load_model(run)
    with engine.begin() as conn:
        return store.register_model(conn, model.version, model.run_path, store.now())


def rollback(engine: Engine) -> dict[str, Any]:
    with engine.begin() as conn:
        return store.rollback(conn, store.now())


def list_models(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = store.list_models(conn)
        conn.rollback()
    return rows


def target_distribution(model: ServedModel, joined: JoinedLog, decisions: dict[str, dict],
                        target: str) -> np.ndarray:
    """`(n, K)` the model's serving distribution at every joined state: the logged
    exploration of each decision (`served`) or none (`greedy`)."""
    data = joined.sessions
    if data.mask.shape[1] != model.settings.n_candidates:
        raise CheckpointError(f"model {model.version} reads {model.settings.n_candidates} "
                              f"candidates; the log's tables hold {data.mask.shape[1]}")
    explorations = [json.dumps(decisions[d]["exploration"], sort_keys=True)
                    if target == "served" else json.dumps({"kind": "epsilon", "epsilon": 0.0})
                    for d in joined.decision_ids]
    out = np.zeros(data.mask.shape)
    obs = data.observations()
    for setting in sorted(set(explorations)):
        rows = np.flatnonzero(np.array(explorations) == setting)
        policy = serving_policy(model, 1, json.loads(setting), np.random.default_rng(0))
        out[rows] = policy.probabilities({k: v[rows] for k, v in obs.items()})
    return with_forced(data, out)


def _empty_verdict(joined: JoinedLog, config: GateConfig) -> GateVerdict:
    return GateVerdict(NOT_ENOUGH, f"{joined.stats['sessions']} complete sessions in the "
                       f"log; the gate needs at least {config.min_sessions}", 0, 0, {}, {}, {},
                       {}, {})


def judge(engine: Engine, live: ServedModel, candidate: ServedModel, gate_config: GateConfig,
          join_config: JoinConfig, target: str = "served") -> GateVerdict:
    """The gate's verdict on replacing `live` by `candidate`, on the whole log."""
    if target not in TARGETS:
        raise UsageError(f"--target must be one of {list(TARGETS)}, got {target!r}")
    if join_config.unlogged != "refuse":
        raise LogError("the gate judges complete logs only: sessions dropped for unlogged "
                       "decisions would favour short sessions (use unlogged: refuse)")
    joined = join_log(engine, join_config)
    if joined.stats["sessions"] < max(gate_config.min_sessions, 1):
        return _empty_verdict(joined, gate_config)
    with engine.connect() as conn:
        decisions = {row["decision_id"]: row for row in store.iter_decisions(conn)}
        conn.rollback()
    if joined.slate is not None:  # k > 1: the slate estimators (liveq.ope.slate_gate)
        return judge_slates(joined, decisions, live, candidate, gate_config, target)
    data: Sessions = joined.sessions
    return gate(data, target_distribution(live, joined, decisions, target),
                target_distribution(candidate, joined, decisions, target), gate_config)


def promote_gated(engine: Engine, run_or_version: str, gate_config: GateConfig,
                  join_config: JoinConfig, target: str = "served") -> Promotion:
    """Register (when a run folder is given), judge against the live model, store the
    verdict, and promote only on "promote". No live model: promoted without a gate."""
    version, candidate = _candidate(engine, run_or_version)
    with engine.connect() as conn:
        live_row = store.live_model(conn)
        conn.rollback()
    if live_row is None or live_row["version"] == version:
        reason = ("no live model to compare with" if live_row is None
                  else "the candidate is already live")
        verdict = GateVerdict(PROMOTE, reason, 0, 0, {}, {}, {}, {}, {})
    else:
        live = load_model(live_row["run_path"])
        verdict = judge(engine, live, candidate, gate_config, join_config, target)
    record = {**verdict.to_dict(), "judged_at": store.now(),
              "live": None if live_row is None else live_row["version"]}
    with engine.begin() as conn:
        conn.execute(update(models).where(models.c.version == version).values(gate=record))
        if verdict.promote:
            store.promote(conn, version, store.now())
    return Promotion(version, None if live_row is None else live_row["version"], verdict,
                     verdict.promote)


def _candidate(engine: Engine, run_or_version: str) -> tuple[str, ServedModel]:
    """A registered version, or a run folder registered now."""
    with engine.connect() as conn:
        known = {row["version"]: row for row in store.list_models(conn)}
        conn.rollback()
    if run_or_version in known:
        return run_or_version, load_model(known[run_or_version]["run_path"])
    row = register_run(engine, run_or_version)
    return row["version"], load_model(row["run_path"])
