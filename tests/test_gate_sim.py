"""The gate in the simulator: session logs of rollouts, verdicts where the truth is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liveq.cli.main import main
from liveq.eval.online import evaluate
from liveq.experiments.gate_sim import SMALL_WORLD, GateSimConfig, collect_sessions
from liveq.experiments.ope_sim import ENV_ID, build_policy, parse_policy
from liveq.ope.gate import NOT_BETTER, NOT_ENOUGH, PROMOTE, GateConfig, gate
from liveq.ope.sessions import check_sessions, on_policy_value, target_distribution
from liveq.sim.vector import make_vec_env

SEED = 3


def log(policy_text: str, sessions: int):
    env = make_vec_env(ENV_ID, 16, SMALL_WORLD)
    try:
        data = collect_sessions(env, build_policy(parse_policy(policy_text), env, SEED),
                                sessions, SEED)
        return data, env
    finally:
        env.close()


def dist(text: str, data, env) -> np.ndarray:
    return target_distribution(build_policy(parse_policy(text), env, SEED + 1), data)


def test_sessions_of_rollouts_are_complete_and_match_online_evaluation():
    data, _ = log("popular:0.3", 64)
    check_sessions(data)
    assert data.n_sessions == 64
    rows = np.arange(len(data.action))
    assert np.all(data.behaviour[rows, data.action] > 0)
    env = make_vec_env(ENV_ID, 16, SMALL_WORLD)
    online = evaluate(lambda e: build_policy(parse_policy("popular:0.3"), e, SEED), env, 64,
                      SEED)
    env.close()
    # the same policy, seed and per-slot quota: the very same sessions
    assert on_policy_value(data) == pytest.approx(online["return"]["mean"])
    assert len(data.action) == pytest.approx(online["length"]["mean"] * 64)


def test_gate_promotes_popular_over_random_and_refuses_the_reverse():
    config = GateConfig(n_boot=20, min_sessions=200, decide_by=["fqe", "wdr"],
                        min_effective_sessions=0)
    # popular's online return per session is well above random's (README: 5.3 vs 3.4)
    data, env = log("random", 384)
    up = gate(data, data.behaviour, dist("popular:0.3", data, env), config)
    assert up.verdict == PROMOTE, up.reason
    # whole sessions of popular are rare in a uniform log: worth about 5 sessions of it
    assert up.effective_sessions["candidate"] < 10 <= up.effective_sessions["live"]
    strict = GateConfig(n_boot=20, min_sessions=200, decide_by=["fqe", "wdr"])
    refused = gate(data, data.behaviour, dist("popular:0.3", data, env), strict)
    assert refused.verdict == NOT_ENOUGH and "worth" in refused.reason
    # FQE alone pools sessions through its model: the weights' ESS does not bind it
    assert gate(data, data.behaviour, dist("popular:0.3", data, env),
                GateConfig(n_boot=20, min_sessions=200)).verdict == PROMOTE
    data, env = log("popular:0.3", 384)
    down = gate(data, data.behaviour, dist("random", data, env), config)
    assert down.verdict == NOT_BETTER, down.reason
    assert down.difference["fqe"].estimate < 0 and down.difference["wdr"].estimate < 0
    small, env = log("random", 48)
    verdict = gate(small, small.behaviour, dist("popular:0.3", small, env), config)
    assert verdict.verdict == NOT_ENOUGH


def test_study_config_is_validated():
    with pytest.raises(Exception, match="runs"):
        GateSimConfig(runs={"bc": "x"}).validate()
    with pytest.raises(Exception, match="parallel"):
        GateSimConfig(small_sessions=8).validate()


def test_cli_gate_runs_every_scenario(tmp_path, capsys):
    out = tmp_path / "result.json"
    code = main(["ope", "gate", "--seeds", "1", "--sessions", "96", "--small-sessions", "32",
                 "--truth-runs", "1", "--train-steps", "1500", "--min-sessions", "64",
                 "--bootstrap", "10", "--out", str(tmp_path / "runs"), "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "verdict per seed" in printed and "ranks DQN above myopic on" in printed
    result = json.loads(out.read_text())
    scenarios = {r["scenario"]: r for r in result["rows"]}
    assert set(scenarios) == {"upgrade", "reverse", "small"}
    assert scenarios["small"]["verdict"] == NOT_ENOUGH
    assert {s["estimator"] for s in result["summary"]} == {"fqe", "pdwis", "wdr"}
    assert result["ranking"]["one-step dr"]["logs"] == 2
    assert (tmp_path / "runs" / "dqn" / "checkpoints" / "latest.pt").is_file()


def test_cli_gate_refuses_a_file_as_out_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["ope", "gate", "--out", str(blocker), "--seeds", "1"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["ope", "gate", "--steps", "4"]) == 2
    assert "--steps" in capsys.readouterr().err
