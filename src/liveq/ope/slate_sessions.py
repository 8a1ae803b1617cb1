"""Session-level estimates on logs of ranked slates (k > 1).

A slate decision's action is the whole ranked list `A = (a_0, ..., a_{L-1})`. The service
logs its exact probability `b(A|s)` (the exploration's sequential choices), and a target
policy gives `pi(A|s)` of the logged list and its per-rank marginals `P_pi(a_r = i | s)`
(`SlateTarget`). The three estimators of the k = 1 gate (`liveq.ope.sessions`,
`liveq.ope.fqe`) have these slate versions:

    pdwis  per-decision weighted importance sampling over sessions with the whole-slate
           ratio rho_t = pi(A_t|s_t) / b(A_t|s_t). No model of how viewers treat a slate;
           the price is variance: a slate's probability is a product over its ranks, so
           the effective number of sessions falls fast with L (the gate's
           `min_effective_sessions` refuses logs worth too few).
    fqe    fitted Q evaluation with a rank-additive linear Q,
               Q(s, A) = w_0 + v.w_v + sum_r (shown_r c_r + x_{a_r}.u_r),
           so V^pi(s) = E_pi Q(s, A) needs only pi's per-rank marginals (exact for this
           model, no enumeration of slates). ASSUMPTION: the value of a slate is a sum of
           per-rank terms; viewers who compare the items of a slate (the simulator's logit
           choice does) make this a biased model, as any FQE model is when misspecified.
    wdr    weighted doubly robust over sessions with that FQE model as control variate
           (consistent when the ratios are right, whatever the model).

The item-position estimator (per-rank ratios, Li et al. 2018) is not offered: it needs
each rank's own reward and assumes a click on one rank does not depend on the others,
which a viewer who opens at most one item of a slate breaks by construction.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.linalg import cho_solve

from liveq.core.errors import LogError
from liveq.ope.fqe import FQEConfig, QFeatures, fqe_regression
from liveq.ope.sessions import (
    Sessions,
    check_sessions,
    doubly_robust,
    effective_from_weights,
    ratio_weights,
    weighted_returns,
)


class SlateLog(NamedTuple):
    """Logged sessions of slate decisions (n rows, L ranks, K candidates)."""

    sessions: Sessions  # action = the top item, behaviour = rank 0's marginal
    slates: np.ndarray  # (n, L) int64 candidate rows shown, best first; -1 = rank empty
    behaviour: np.ndarray  # (n,) float64 logged probability of the shown ranked list


class SlateTarget(NamedTuple):
    """A target policy read at the logged states."""

    probability: np.ndarray  # (n,) pi(A_t | s_t) of the logged slate
    marginals: np.ndarray  # (n, L, K) P_pi(rank r holds candidate i | s_t)


def check_slate_log(log: SlateLog) -> None:
    """Raise LogError naming the first way `log` is not a log of complete slate sessions."""
    check_sessions(log.sessions)
    n, k = log.sessions.mask.shape
    if log.slates.ndim != 2 or len(log.slates) != n or log.behaviour.shape != (n,):
        raise LogError(f"slates must be (n, L) and behaviour (n,) with n = {n}")
    if np.any(log.slates < -1) or np.any(log.slates >= k):
        raise LogError(f"slates must hold candidate rows in [0, {k}) or -1 (empty)")
    if not np.all(log.behaviour > 0) or np.any(log.behaviour > 1 + 1e-9):
        raise LogError("every logged slate probability must lie in (0, 1]")


def check_target(log: SlateLog, target: SlateTarget, name: str) -> None:
    n, k = log.sessions.mask.shape
    if target.probability.shape != (n,) or target.marginals.shape != (n, log.slates.shape[1],
                                                                       k):
        raise LogError(f"{name}: probability (n,) and marginals (n, L, K) expected")
    if np.any(target.probability < 0) or np.any(target.probability > 1 + 1e-9):
        raise LogError(f"{name}: slate probabilities must lie in [0, 1]")


# ------------------------------------------------------------------ importance weights
def slate_weights(log: SlateLog, target: SlateTarget) -> np.ndarray:
    """`(S, H)` cumulative whole-slate importance weights."""
    return ratio_weights(log.sessions, target.probability / log.behaviour)


def slate_pdwis(log: SlateLog, target: SlateTarget, gamma: float = 1.0,
                counts: np.ndarray | None = None) -> float:
    return weighted_returns(log.sessions, slate_weights(log, target), gamma, counts)


def slate_effective_sessions(log: SlateLog, target: SlateTarget) -> float:
    return effective_from_weights(slate_weights(log, target))


# ------------------------------------------------------------------ rank-additive FQE
def slate_design(features: QFeatures, slates: np.ndarray) -> np.ndarray:
    """`(n, width)` phi(s, A) of the logged slates: [1, v, per rank (shown, x_{a_r})]."""
    shown = (slates >= 0).astype(np.float64)
    rows = np.arange(len(slates))[:, None]
    x = features.candidates[rows, np.maximum(slates, 0)] * shown[..., None]  # (n, L, dx)
    parts = [np.ones((len(slates), 1)), features.viewer]
    parts += [np.concatenate([shown[:, r:r + 1], x[:, r]], axis=1)
              for r in range(slates.shape[1])]
    return np.concatenate(parts, axis=1)


def expected_design(features: QFeatures, marginals: np.ndarray) -> np.ndarray:
    """`(n, width)` E_pi phi(s, A) from the per-rank marginals (rank-additive, so exact)."""
    x = np.einsum("nlk,nkd->nld", marginals, features.candidates)
    filled = marginals.sum(axis=2)
    parts = [np.ones((len(marginals), 1)), features.viewer]
    parts += [np.concatenate([filled[:, r:r + 1], x[:, r]], axis=1)
              for r in range(marginals.shape[1])]
    return np.concatenate(parts, axis=1)


def fit_slate_fqe(log: SlateLog, targets: list[SlateTarget], gamma: float,
                  config: FQEConfig, features: QFeatures, counts: np.ndarray | None = None
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per target, `(Q(s_t, A_t), V(s_t))` `(n,)` each at every logged step, from the
    regressions of the module doc (one Gram factorisation for all targets)."""
    data = log.sessions
    x = slate_design(features, log.slates)
    r = fqe_regression(x, data, gamma, config, counts)
    out = []
    for target in targets:
        expected = expected_design(features, target.marginals)
        q, v = np.zeros(len(x)), np.zeros(len(x))
        for _ in range(r.iterations):
            weights = cho_solve(r.gram, r.xw.T @ (data.reward + r.carry * v[r.nxt]))
            previous = v
            q, v = np.clip(x @ weights, r.low, r.high), np.clip(expected @ weights, r.low, r.high)
            if np.max(np.abs(v - previous)) <= config.tol:
                break
        out.append((q, v))
    return out


def slate_fqe_value(log: SlateLog, v: np.ndarray, counts: np.ndarray | None = None) -> float:
    """Mean over sessions (weighted by `counts`) of V(s_0)."""
    first = np.flatnonzero(log.sessions.step == 0)
    c = np.ones(len(first)) if counts is None else np.asarray(counts, dtype=float)
    return float((c * v[first]).sum() / c.sum())


def slate_wdr(log: SlateLog, target: SlateTarget, q: np.ndarray, v: np.ndarray,
              gamma: float = 1.0, counts: np.ndarray | None = None) -> float:
    return doubly_robust(log.sessions, slate_weights(log, target), q, v, gamma, counts)


def one_step(log: SlateLog, targets: dict[str, SlateTarget], config: FQEConfig,
             features: QFeatures) -> dict[str, dict[str, float]]:
    """One-step slate SNIPS and DR (reward per decision; the DR's reward model is the
    rank-additive regression of the reward alone), shown beside, never deciding."""
    data = log.sessions
    one = FQEConfig(l2=config.l2, iterations=1, tol=config.tol, clip=config.clip)
    fits = fit_slate_fqe(log, list(targets.values()), 0.0, one, features)
    out = {}
    for (name, target), (q, v) in zip(targets.items(), fits, strict=True):
        rho = target.probability / log.behaviour
        snips = float((rho * data.reward).sum() / rho.sum()) if rho.sum() > 0 else 0.0
        out[name] = {"snips": snips, "dr": float(np.mean(v + rho * (data.reward - q)))}
    return out
