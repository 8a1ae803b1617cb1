"""The promotion gate on logs of ranked slates (k > 1).

The same verdicts, thresholds and paired bootstrap over sessions as `liveq.ope.gate`, with
the slate versions of its estimators (`liveq.ope.slate_sessions`): `pdwis` with whole-slate
importance ratios, `fqe` with a rank-additive linear Q (refitted on every resample) and
`wdr` with that model as control variate. The estimator names are the k = 1 gate's, so a
`GateConfig` (`decide_by`, `min_effective_sessions`, ...) means the same on both kinds
of log; the effective sessions are those of the whole-slate weights.
"""

from __future__ import annotations

import numpy as np

from liveq.core.errors import ConfigError
from liveq.ope.fqe import q_features
from liveq.ope.gate import NOT_ENOUGH, GateConfig, GateVerdict, decide, interval_figures
from liveq.ope.slate_sessions import (
    SlateLog,
    SlateTarget,
    check_slate_log,
    check_target,
    fit_slate_fqe,
    one_step,
    slate_effective_sessions,
    slate_fqe_value,
    slate_pdwis,
    slate_wdr,
)


def _estimates(log: SlateLog, targets: list[SlateTarget], config: GateConfig,
               counts: np.ndarray | None, features) -> np.ndarray:
    """`(len(targets), len(config.estimators))` estimates with session counts `counts`."""
    fits = None
    if {"fqe", "wdr"} & set(config.estimators):
        fits = fit_slate_fqe(log, targets, config.gamma, config.fqe, features, counts)
    out = np.empty((len(targets), len(config.estimators)))
    for i, target in enumerate(targets):
        for j, name in enumerate(config.estimators):
            if name == "fqe":
                out[i, j] = slate_fqe_value(log, fits[i][1], counts)
            elif name == "pdwis":
                out[i, j] = slate_pdwis(log, target, config.gamma, counts)
            else:
                out[i, j] = slate_wdr(log, target, *fits[i], config.gamma, counts)
    return out


def slate_session_estimates(log: SlateLog, targets: list[SlateTarget], config: GateConfig
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Estimates on the whole log `(T, E)` and on `config.n_boot` session resamples
    `(n_boot, T, E)`."""
    features = q_features(log.sessions, False)
    full = _estimates(log, targets, config, None, features)
    rng = np.random.default_rng(config.seed)
    s = log.sessions.n_sessions
    replicates = np.stack([
        _estimates(log, targets, config, np.bincount(rng.integers(0, s, s), minlength=s),
                   features) for _ in range(config.n_boot)])
    return full, replicates


def slate_gate(log: SlateLog, live: SlateTarget, candidate: SlateTarget,
               config: GateConfig | None = None) -> GateVerdict:
    """The verdict on replacing `live` by `candidate`, both read at the logged states."""
    config = config or GateConfig()
    config.validate()
    if config.fqe.interactions:
        raise ConfigError("fqe.interactions: the slate gate's FQE is rank-additive and has "
                          "no viewer x candidate interactions; set it to false")
    check_slate_log(log)
    check_target(log, live, "live")
    check_target(log, candidate, "candidate")
    data = log.sessions
    ess = {"live": slate_effective_sessions(log, live),
           "candidate": slate_effective_sessions(log, candidate)}
    sizes = {"sessions": data.n_sessions, "steps": len(data.action), "effective_sessions": ess}
    if data.n_sessions < config.min_sessions:
        return GateVerdict(NOT_ENOUGH, f"{data.n_sessions} sessions logged; the gate needs "
                           f"at least {config.min_sessions}", **sizes, live={}, candidate={},
                           difference={}, one_step={})
    full, replicates = slate_session_estimates(log, [live, candidate], config)
    figures = interval_figures(full, replicates, config)
    verdict, reason = decide(figures["difference"], ess["candidate"], config)
    return GateVerdict(verdict, reason, **sizes, **figures,
                       one_step=one_step(log, {"live": live, "candidate": candidate},
                                         config.fqe, q_features(data, False)))
