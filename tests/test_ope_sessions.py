"""Session-level estimators and the gate, against numbers worked out by hand.

The toy MDP: state A at step 0; action 0 pays 1 and leads to B, action 1 pays 0 and
leads to C; at step 1 the session ends, B paying (2, 0) and C paying (1, 3) for actions
(0, 1). The behaviour is uniform; the target takes action 0 with 0.75 everywhere, so
Q(B) = (2, 0), Q(C) = (1, 3), V(B) = V(C) = 1.5, Q(A) = (2.5, 1.5), V(A) = 2.25.
"""

from __future__ import annotations

import numpy as np
import pytest

from liveq.core.errors import ConfigError, LogError
from liveq.ope.fqe import FQEConfig, fit_fqe, fqe_value, returns_to_go_range
from liveq.ope.gate import NOT_BETTER, NOT_ENOUGH, PROMOTE, GateConfig, gate
from liveq.ope.sessions import (
    Sessions,
    check_sessions,
    complete_sessions,
    effective_sessions,
    on_policy_value,
    pdwis,
    session_returns,
    wdr,
)

REWARD = {("A", 0): 1.0, ("A", 1): 0.0, ("B", 0): 2.0, ("B", 1): 0.0, ("C", 0): 1.0,
          ("C", 1): 3.0}
STATES = "ABC"


def toy(paths: list[tuple[int, int]], rewards: dict | None = None) -> Sessions:
    """One session per (first action, second action) path of the toy MDP."""
    rewards = rewards or REWARD
    rows = []
    for i, (a0, a1) in enumerate(paths):
        second = "B" if a0 == 0 else "C"
        rows += [(i, 0, "A", a0, rewards[("A", a0)], False),
                 (i, 1, second, a1, rewards[(second, a1)], True)]
    n = len(rows)
    viewer = np.zeros((n, 3), dtype=np.float32)
    viewer[np.arange(n), [STATES.index(r[2]) for r in rows]] = 1.0
    return Sessions(session=np.array([r[0] for r in rows]), step=np.array([r[1] for r in rows]),
                    viewer=viewer, candidates=np.tile(np.eye(2, dtype=np.float32), (n, 1, 1)),
                    mask=np.ones((n, 2), dtype=bool), action=np.array([r[3] for r in rows]),
                    behaviour=np.full((n, 2), 0.5), reward=np.array([r[4] for r in rows]),
                    terminal=np.array([r[5] for r in rows]))


def constant(data: Sessions, p0: float) -> np.ndarray:
    return np.tile([p0, 1.0 - p0], (len(data.action), 1))


def by_state(data: Sessions, p0: dict[str, float]) -> np.ndarray:
    state = np.array([STATES[i] for i in data.viewer.argmax(axis=1)])
    first = np.array([p0[s] for s in state])
    return np.stack([first, 1.0 - first], axis=1)


TWO = [(0, 0), (1, 0)]  # returns 3 and 1


def test_pdwis_by_hand():
    data = toy(TWO)
    pi = constant(data, 0.75)  # ratios: action 0 -> 1.5, action 1 -> 0.5
    # W = (1.5, 2.25) and (0.5, 0.75); step 0: 1.5*1 / 2 = 0.75; step 1: (2.25*2 + 0.75*1)/3
    assert pdwis(data, pi) == pytest.approx(0.75 + 1.75)
    assert pdwis(data, pi, gamma=0.5) == pytest.approx(0.75 + 0.5 * 1.75)
    assert effective_sessions(data, pi) == pytest.approx(9 / 5.625)  # (2.25+0.75)^2/(...)
    assert on_policy_value(data) == pytest.approx(2.0)
    assert pdwis(data, data.behaviour) == pytest.approx(2.0)  # on-policy: weights 1
    np.testing.assert_allclose(session_returns(data, 0.5), [2.0, 0.5])


def test_wdr_by_hand():
    data = toy(TWO)
    pi = constant(data, 0.75)
    q = np.array([[3.0, 1.0], [2.0, 0.0], [1.0, 1.0], [1.0, 3.0]])
    # v = (2.5, 1.5, 1, 1.5); q at the logged action = (3, 2, 1, 1)
    # step 0: 0.75(1-3) + 0.25(0-1) + 0.5*2.5 + 0.5*1 = 0
    # step 1: 0.75(2-2) + 0.25(1-1) + 0.75*1.5 + 0.25*1.5 = 1.5
    assert wdr(data, pi, q) == pytest.approx(1.5)
    assert wdr(data, pi, np.zeros_like(q)) == pytest.approx(pdwis(data, pi))


def test_counts_equal_a_resampled_log():
    data, twice = toy(TWO), toy([(0, 0), (0, 0), (1, 0)])
    pi = constant(data, 0.75)
    counts = np.array([2.0, 1.0])
    assert pdwis(data, pi, counts=counts) == pytest.approx(pdwis(twice, constant(twice, .75)))
    batched = pdwis(data, pi, counts=np.array([[2.0, 1.0], [1.0, 1.0]]))
    np.testing.assert_allclose(batched, [pdwis(twice, constant(twice, .75)), pdwis(data, pi)])


def test_fqe_is_exact_on_the_tabular_toy():
    data = toy([(0, 0), (0, 1), (1, 0), (1, 1)])
    pi = constant(data, 0.75)
    config = FQEConfig(l2=1e-6, interactions=True)  # v (x) x_a is one-hot in (s, a)
    (q,) = fit_fqe(data, [pi], 1.0, config)
    np.testing.assert_allclose(q[[0, 1, 2]], [[2.5, 1.5], [2.0, 0.0], [2.5, 1.5]], atol=1e-3)
    np.testing.assert_allclose(q[5], [1.0, 3.0], atol=1e-3)  # state C
    assert fqe_value(data, pi, q) == pytest.approx(2.25, abs=1e-3)
    assert pdwis(data, pi) == pytest.approx(2.25)  # a balanced log: (3 + 6) / 4
    assert wdr(data, pi, q) == pytest.approx(2.25, abs=1e-3)
    # a discount halves what step 1 adds: Q(A) = (1 + 0.75, 0 + 0.75)
    (q_half,) = fit_fqe(data, [pi], 0.5, config)
    np.testing.assert_allclose(q_half[0], [1.75, 0.75], atol=1e-3)
    assert returns_to_go_range(data, 1.0) == (0.0, 3.0)


def test_fqe_bootstrap_counts_drop_sessions():
    data = toy([(0, 0), (0, 1), (1, 0), (1, 1)])
    pi = constant(data, 0.75)
    config = FQEConfig(l2=1e-6, interactions=True)
    (q,) = fit_fqe(data, [pi], 1.0, config, counts=np.array([1.0, 1.0, 1.0, 0.0]))
    # without the session (A1, C1), Q(C, 1) is unseen: no longer forced to 3 by the data
    assert abs(q[5, 1] - 3.0) > 0.1
    assert q[5, 0] == pytest.approx(1.0, abs=1e-3)


def test_check_sessions_names_the_problem():
    data = toy(TWO)
    check_sessions(data)
    with pytest.raises(LogError, match="terminal"):
        check_sessions(data._replace(terminal=np.array([False, False, False, True])))
    with pytest.raises(LogError, match="step"):
        check_sessions(data._replace(step=np.array([0, 2, 0, 1])))
    with pytest.raises(LogError, match="probability 0"):
        check_sessions(data._replace(behaviour=np.tile([0.0, 1.0], (4, 1))))
    with pytest.raises(LogError, match="distribution"):
        check_sessions(data._replace(behaviour=np.full((4, 2), 0.7)))
    cut = data._replace(terminal=np.array([False, True, False, False]))
    kept = complete_sessions(cut)
    assert kept.n_sessions == 1 and list(kept.session) == [0, 0]


def sampled(n: int, seed: int) -> Sessions:
    """`n` sessions of the uniform behaviour on the toy MDP where C's action 1 pays 4."""
    paths = np.random.default_rng(seed).integers(0, 2, (n, 2))
    return toy([tuple(p) for p in paths], {**REWARD, ("C", 1): 4.0})


def test_gate_promotes_refuses_and_wants_data():
    data = sampled(400, 0)
    # the best policy: action 1 in A and C, action 0 in B (value 4; uniform's is 2)
    best = by_state(data, {"A": 0.1, "B": 0.9, "C": 0.1})
    config = GateConfig(n_boot=50, min_sessions=100, fqe=FQEConfig(interactions=True))
    up = gate(data, data.behaviour, best, config)
    assert up.verdict == PROMOTE, up.reason
    assert up.difference["fqe"].low > 0 and up.candidate["pdwis"].estimate > 3
    down = gate(data, best, data.behaviour, config)
    assert down.verdict == NOT_BETTER and not down.promote
    small = gate(sampled(50, 1), data.behaviour[:100], best[:100], config)
    assert small.verdict == NOT_ENOUGH and "50 sessions" in small.reason
    far = GateConfig(n_boot=50, min_sessions=100, margin=5.0)
    assert gate(data, data.behaviour, best, far).verdict == NOT_BETTER
    assert set(up.one_step) == {"live", "candidate"}


def test_gate_config_is_validated():
    with pytest.raises(ConfigError, match="decide_by"):
        GateConfig(estimators=["pdwis"], decide_by=["fqe"]).validate()
    with pytest.raises(ConfigError, match="gamma"):
        GateConfig(gamma=0.0).validate()
    with pytest.raises(ConfigError, match="unknown"):
        GateConfig(estimators=["ips"]).validate()
