"""The promotion gate: promote a candidate only when the log shows it wins whole sessions.

One-step estimates rank a click-chasing policy first (they value the next reward), so
the gate judges policies by their value per session (`liveq.ope.sessions`): the live
policy and the candidate are both estimated on the same log of sessions by each chosen
estimator (FQE, PDWIS, WDR), and the difference candidate - live gets a percentile
bootstrap interval over sessions (both policies on the same resamples, so the interval
is of the paired difference; FQE is refitted on every resample). The verdict:

    refuse: not enough data   fewer logged sessions than `min_sessions`, or (when an
                              importance-weighted estimator decides) the log is worth
                              fewer than `min_effective_sessions` sessions of the
                              candidate (whole-session importance weights)
    promote                   for every estimator in `decide_by`, the lower end of the
                              difference's interval is above `margin`
    refuse: candidate not better   otherwise

One-step SNIPS and DR (reward per step, `liveq.ope.estimators`) are reported beside, never
used to decide.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from liveq.core.config import require
from liveq.ope.estimators import LoggedBandit, RewardFeatures, cross_fit, dr, fold_ids, snips
from liveq.ope.fqe import FQEConfig, fit_fqe, fqe_value, q_features
from liveq.ope.sessions import (
    Sessions,
    check_distribution,
    check_sessions,
    effective_sessions,
    pdwis,
    target_distribution,
    wdr,
    with_forced,
)

SESSION_ESTIMATORS = ("fqe", "pdwis", "wdr")
PROMOTE = "promote"
NOT_BETTER = "refuse: candidate not better"
NOT_ENOUGH = "refuse: not enough data"


@dataclass(kw_only=True)
class GateConfig:
    """What the promotion gate estimates and how sure it must be."""

    estimators: list[str] = field(default_factory=lambda: list(SESSION_ESTIMATORS))
    """Session-level estimators to compute, from SESSION_ESTIMATORS."""
    decide_by: list[str] = field(default_factory=lambda: ["fqe"])
    """Estimators whose interval must clear the margin to promote (all of them)."""
    margin: float = 0.0
    """Smallest gain in return per session worth a promotion (lower bound must exceed it)."""
    min_sessions: int = 200
    """Fewer logged sessions than this: not enough data."""
    min_effective_sessions: float = 10.0
    """When `decide_by` names an importance-weighted estimator (pdwis, wdr), the
    candidate's whole-session effective sample size must reach this."""
    gamma: float = 1.0
    """Discount of the session return; 1 compares undiscounted returns per session."""
    n_boot: int = 100
    """Bootstrap replicates (resampled sessions) of every interval."""
    alpha: float = 0.05
    """Intervals cover 1 - alpha (the promotion test is one-sided at alpha / 2)."""
    seed: int = 0
    """Seed of the bootstrap and of the one-step reward model's folds."""
    fqe: FQEConfig = field(default_factory=FQEConfig)
    """Fitted Q evaluation settings."""

    def validate(self) -> None:
        unknown = [e for e in self.estimators if e not in SESSION_ESTIMATORS]
        require(bool(self.estimators) and not unknown,
                f"estimators: unknown {unknown}; choose from {list(SESSION_ESTIMATORS)}")
        missing = [e for e in self.decide_by if e not in self.estimators]
        require(bool(self.decide_by) and not missing,
                f"decide_by must name computed estimators; {missing} not in {self.estimators}")
        require(self.min_sessions >= 2, f"min_sessions must be at least 2, got "
                f"{self.min_sessions}")
        require(self.min_effective_sessions >= 0, "min_effective_sessions must be >= 0")
        require(0.0 < self.gamma <= 1.0, f"gamma must be in (0, 1], got {self.gamma}")
        require(self.n_boot >= 10, f"n_boot must be at least 10, got {self.n_boot}")
        require(0.0 < self.alpha < 1.0, f"alpha must be in (0, 1), got {self.alpha}")
        self.fqe.validate()


@dataclass
class Interval:
    """An estimate on the whole log and its bootstrap interval."""

    estimate: float
    low: float
    high: float


@dataclass
class GateVerdict:
    """The gate's decision and every figure behind it."""

    verdict: str  # PROMOTE, NOT_BETTER or NOT_ENOUGH
    reason: str
    sessions: int
    steps: int
    effective_sessions: dict[str, float]  # "live" / "candidate" -> ESS in sessions
    live: dict[str, Interval]  # estimator -> value per session
    candidate: dict[str, Interval]
    difference: dict[str, Interval]  # estimator -> candidate - live
    one_step: dict[str, dict[str, float]]  # "live" / "candidate" -> {"snips", "dr"}

    @property
    def promote(self) -> bool:
        return self.verdict == PROMOTE

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "promote": self.promote}


# ------------------------------------------------------------------ estimates
def _estimates(data: Sessions, targets: list[np.ndarray], config: GateConfig,
               counts: np.ndarray | None, features: Any) -> np.ndarray:
    """`(len(targets), len(config.estimators))` estimates with session counts `counts`."""
    q_hats = None
    if {"fqe", "wdr"} & set(config.estimators):
        q_hats = fit_fqe(data, targets, config.gamma, config.fqe, counts, features)
    out = np.empty((len(targets), len(config.estimators)))
    for i, target in enumerate(targets):
        for j, name in enumerate(config.estimators):
            if name == "fqe":
                out[i, j] = fqe_value(data, target, q_hats[i], counts)
            elif name == "pdwis":
                out[i, j] = pdwis(data, target, config.gamma, counts)
            else:
                out[i, j] = wdr(data, target, q_hats[i], config.gamma, counts)
    return out


def session_estimates(data: Sessions, targets: list[np.ndarray],
                      config: GateConfig) -> tuple[np.ndarray, np.ndarray]:
    """Estimates on the whole log `(T, E)` and on `config.n_boot` session resamples
    `(n_boot, T, E)` for targets `(n, K)` and the config's estimators."""
    features = q_features(data, config.fqe.interactions)
    full = _estimates(data, targets, config, None, features)
    rng = np.random.default_rng(config.seed)
    s = data.n_sessions
    replicates = np.stack([
        _estimates(data, targets, config, np.bincount(rng.integers(0, s, s), minlength=s),
                   features) for _ in range(config.n_boot)])
    return full, replicates


def interval(full: float, replicates: np.ndarray, alpha: float) -> Interval:
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return Interval(float(full), float(low), float(high))


def one_step(data: Sessions, targets: dict[str, np.ndarray], seed: int) -> dict[str, dict]:
    """One-step SNIPS and DR (reward per step) of each target, as `liveq ope sim` does."""
    rows = np.arange(len(data.action))
    q_hat = cross_fit(RewardFeatures(context=data.viewer, pair=data.candidates), data.action,
                      data.reward, n_actions=data.mask.shape[1], kind="linear", l2=1.0,
                      folds=fold_ids(len(rows), 3, seed))
    pscore = data.behaviour[rows, data.action]
    out = {}
    for name, target in targets.items():
        bandit = LoggedBandit(data.reward, data.action, pscore, target, q_hat)
        out[name] = {"snips": snips(bandit), "dr": dr(bandit)}
    return out


# ------------------------------------------------------------------ the gate
def gate(data: Sessions, live: np.ndarray, candidate: np.ndarray,
         config: GateConfig | None = None) -> GateVerdict:
    """The verdict on replacing `live` by `candidate`, both `(n, K)` distributions at the
    logged states (`target_distribution(policy, data)`)."""
    config = config or GateConfig()
    config.validate()
    check_sessions(data)
    live, candidate = with_forced(data, live), with_forced(data, candidate)
    check_distribution(data, live, "live")
    check_distribution(data, candidate, "candidate")
    ess = {"live": effective_sessions(data, live),
           "candidate": effective_sessions(data, candidate)}
    sizes = {"sessions": data.n_sessions, "steps": len(data.action), "effective_sessions": ess}
    if data.n_sessions < config.min_sessions:
        return GateVerdict(NOT_ENOUGH, f"{data.n_sessions} sessions logged; the gate needs "
                           f"at least {config.min_sessions}", **sizes, live={}, candidate={},
                           difference={}, one_step={})
    full, replicates = session_estimates(data, [live, candidate], config)
    figures = interval_figures(full, replicates, config)
    verdict, reason = decide(figures["difference"], ess["candidate"], config)
    return GateVerdict(verdict, reason, **sizes, **figures,
                       one_step=one_step(data, {"live": live, "candidate": candidate},
                                         config.seed))


def interval_figures(full: np.ndarray, replicates: np.ndarray, config: GateConfig
                     ) -> dict[str, dict[str, Interval]]:
    """live / candidate / difference -> estimator -> Interval, from the estimates of
    [live, candidate] on the whole log `(2, E)` and on the resamples `(n_boot, 2, E)`."""
    figures: dict[str, dict[str, Interval]] = {"live": {}, "candidate": {}, "difference": {}}
    for j, name in enumerate(config.estimators):
        figures["live"][name] = interval(full[0, j], replicates[:, 0, j], config.alpha)
        figures["candidate"][name] = interval(full[1, j], replicates[:, 1, j], config.alpha)
        figures["difference"][name] = interval(full[1, j] - full[0, j],
                                               replicates[:, 1, j] - replicates[:, 0, j],
                                               config.alpha)
    return figures


def decide(difference: dict[str, Interval], candidate_ess: float,
           config: GateConfig) -> tuple[str, str]:
    """(verdict, reason) from the differences' intervals and the candidate's ESS."""
    weighted = {"pdwis", "wdr"} & set(config.decide_by)
    if weighted and candidate_ess < config.min_effective_sessions:
        return NOT_ENOUGH, (f"the log is worth {candidate_ess:.1f} sessions of the candidate; "
                            f"the gate needs {config.min_effective_sessions:g}")
    short = [f"{name} {difference[name].low:+.3f}" for name in config.decide_by
             if difference[name].low <= config.margin]
    if short:
        return NOT_BETTER, (f"lower bound of the gain per session not above "
                            f"{config.margin:g}: " + ", ".join(short))
    bounds = ", ".join(f"{name} {difference[name].low:+.3f}" for name in config.decide_by)
    return PROMOTE, f"every lower bound of the gain per session is above {config.margin:g}: " \
                    f"{bounds}"


def gate_policies(data: Sessions, live: Any, candidate: Any,
                  config: GateConfig | None = None) -> GateVerdict:
    """`gate` for two Policy objects, read at the logged states."""
    return gate(data, target_distribution(live, data), target_distribution(candidate, data),
                config)
