"""Session-level estimators and the gate on slate logs, where the truth is known: logged
sessions of uniformly random ordered slates of 2 out of 4 candidates, a rank-additive
reward (so the rank-additive FQE is well specified), and targets whose value is exact."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from liveq.core.errors import ConfigError, LogError
from liveq.ope.fqe import q_features
from liveq.ope.gate import NOT_ENOUGH, PROMOTE, GateConfig
from liveq.ope.sessions import Sessions, on_policy_value
from liveq.ope.slate_gate import slate_gate, slate_session_estimates
from liveq.ope.slate_sessions import (
    SlateLog,
    SlateTarget,
    check_slate_log,
    expected_design,
    slate_design,
    slate_effective_sessions,
    slate_pdwis,
)

K, L, H = 4, 2, 2
RANK_WEIGHT = np.array([1.0, 0.5])
BETA = np.array([1.0, -0.5])
SLATES = np.array(list(itertools.permutations(range(K), L)))  # 12 ordered slates


def make_log(n_sessions: int, seed: int = 0) -> tuple[SlateLog, np.ndarray]:
    """The log and every row's item values `(n, K)` (x . beta)."""
    rng = np.random.default_rng(seed)
    n = n_sessions * H
    step = np.tile(np.arange(H), n_sessions)
    # the viewer features hold the step (as the LiveStream observation does), so a linear
    # Q can tell the first step's value-to-go from the last one's
    viewer = np.stack([step, rng.normal(size=n)], axis=1).astype(np.float32)
    cands = rng.normal(size=(n, K, 2)).astype(np.float32)
    values = cands.astype(np.float64) @ BETA
    slates = SLATES[rng.integers(0, len(SLATES), n)]
    mean = (np.take_along_axis(values, slates, axis=1) * RANK_WEIGHT).sum(axis=1)
    sessions = Sessions(session=np.repeat(np.arange(n_sessions), H), step=step, viewer=viewer,
                        candidates=cands, mask=np.ones((n, K), bool), action=slates[:, 0],
                        behaviour=np.full((n, K), 1.0 / K),
                        reward=mean + rng.normal(0.0, 0.5, n), terminal=step == H - 1)
    return SlateLog(sessions, slates, np.full(n, 1.0 / len(SLATES))), values


def greedy_target(log: SlateLog, values: np.ndarray, epsilon: float,
                  sign: float = 1.0) -> tuple[SlateTarget, float]:
    """Epsilon-greedy around the best (sign 1) or worst (sign -1) slate, with its exact
    value per session on the logged states."""
    best = np.argsort(-sign * values, axis=1, kind="stable")[:, :L]
    n = len(values)
    marginals = np.full((n, L, K), epsilon / K)
    marginals[np.arange(n)[:, None], np.arange(L)[None, :], best] += 1.0 - epsilon
    match = (log.slates == best).all(axis=1)
    probability = (1.0 - epsilon) * match + epsilon / len(SLATES)
    greedy_value = (np.take_along_axis(values, best, axis=1) * RANK_WEIGHT).sum(axis=1)
    uniform_value = values.mean(axis=1) * RANK_WEIGHT.sum()
    per_step = (1.0 - epsilon) * greedy_value + epsilon * uniform_value
    return SlateTarget(probability, marginals), float(per_step.sum() / log.sessions.n_sessions)


def test_the_behaviour_as_target_weighs_every_session_once():
    log, _ = make_log(300)
    behaviour = SlateTarget(log.behaviour.copy(), np.full((len(log.behaviour), L, K), 1 / K))
    assert slate_pdwis(log, behaviour) == pytest.approx(on_policy_value(log.sessions))
    assert slate_effective_sessions(log, behaviour) == pytest.approx(300)


def test_expected_features_of_a_certain_slate_are_its_features():
    log, values = make_log(50)
    target, _ = greedy_target(log, values, 0.0)
    features = q_features(log.sessions)
    chosen = target.marginals.argmax(axis=2)
    np.testing.assert_allclose(expected_design(features, target.marginals),
                               slate_design(features, chosen))


@pytest.mark.parametrize("seed", [0, 1])
def test_each_estimator_finds_the_true_value_of_a_better_slate_policy(seed):
    log, values = make_log(3000, seed)
    target, truth = greedy_target(log, values, 0.3)
    config = GateConfig(n_boot=10, min_sessions=10)
    full, _ = slate_session_estimates(log, [target], config)
    fqe, pdwis, wdr = full[0]
    assert truth > on_policy_value(log.sessions) + 0.5  # the target is much better
    assert fqe == pytest.approx(truth, abs=0.05)  # well specified: tight
    assert wdr == pytest.approx(truth, abs=0.1)
    assert pdwis == pytest.approx(truth, abs=0.3)


def test_the_gate_promotes_the_better_policy_refuses_the_worse_and_small_logs():
    log, values = make_log(600)
    good, _ = greedy_target(log, values, 0.3)
    bad, _ = greedy_target(log, values, 0.3, sign=-1.0)
    config = GateConfig(n_boot=30, min_sessions=100, decide_by=["fqe", "wdr"])
    assert slate_gate(log, bad, good, config).verdict == PROMOTE
    refused = slate_gate(log, good, bad, config)
    assert refused.verdict != PROMOTE and refused.difference["fqe"].high < 0
    small = slate_gate(log, bad, good, GateConfig(n_boot=30, min_sessions=1000))
    assert small.verdict == NOT_ENOUGH and "600 sessions" in small.reason
    assert set(refused.one_step) == {"live", "candidate"}


def test_refusals_name_the_problem():
    log, values = make_log(50)
    target, _ = greedy_target(log, values, 0.3)
    with pytest.raises(ConfigError, match="rank-additive"):
        config = GateConfig(n_boot=10, min_sessions=10)
        config.fqe.interactions = True
        slate_gate(log, target, target, config)
    with pytest.raises(LogError, match=r"in \(0, 1\]"):
        check_slate_log(log._replace(behaviour=np.zeros(len(log.behaviour))))
    with pytest.raises(LogError, match="candidate rows"):
        check_slate_log(log._replace(slates=log.slates + K))
