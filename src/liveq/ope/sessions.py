"""Logged viewer sessions and the importance-sampling estimators of a session's value.

A one-step estimate (`liveq.ope.estimators`) values the next reward; a policy that plans
(DQN) gives up some of it for longer sessions, which only a session-level estimate sees.
Here the unit is the session: the value of a target policy `pi` is the expected return
of a session, `V(pi) = E[sum_t gamma^t r_t]`, undiscounted by default (`gamma = 1`: the
return per session that `liveq.eval.online` measures in the simulator).

`Sessions` is the plain trajectory structure: one row per decision, rows grouped by
session and ordered by step, with the observation the policy saw (the LiveStream
observation: viewer vector, candidate features, mask), the logged action, the behaviour
policy's full distribution over the candidates (the Policy contract's `probabilities`),
the reward and whether the session ended at that step. Every session is complete: its
last row is its terminal one (`complete_sessions` drops those a log window cut off).

Estimators take the target's `(n, K)` distribution at the logged states (`target_
distribution`) and optional session multiplicities `counts` `(S,)` (a bootstrap
replicate resamples sessions; the estimate on the resample equals the estimate with those
counts). With the per-step ratio `rho_t = pi(a_t|s_t) / b(a_t|s_t)` and the cumulative
weight `W_{i,t} = prod_{u<=t} rho_u` of session `i` (constant after the session ends):

    PDWIS  sum_t gamma^t sum_i w_{i,t} r_{i,t},  w_{i,t} = c_i W_{i,t} / sum_j c_j W_{j,t}
    WDR    PDWIS - sum_t gamma^t sum_i (w_{i,t} q(s,a)_{i,t} - w_{i,t-1} v(s)_{i,t})
           with w_{i,-1} = c_i / sum_j c_j, q a model of Q^pi and v(s) = sum_a pi(a|s) q(s,a)

(Precup et al. 2000; Thomas & Brunskill 2016, Jiang & Li 2016.) Steps with no allowed
candidate are no decision: both policies take the forced action (ratio 1).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from liveq.core.errors import LogError


class Sessions(NamedTuple):
    """Logged sessions, one row per decision (n rows, S sessions, K candidates)."""

    session: np.ndarray  # (n,) int64 session index 0..S-1, non-decreasing
    step: np.ndarray  # (n,) int64 step within the session, 0, 1, 2, ...
    viewer: np.ndarray  # (n, d_viewer) float32 viewer features the policy saw
    candidates: np.ndarray  # (n, K, d_candidate) float32 candidate features
    mask: np.ndarray  # (n, K) bool, the candidates that could be recommended
    action: np.ndarray  # (n,) int64 logged action
    behaviour: np.ndarray  # (n, K) float64 behaviour's distribution over the candidates
    reward: np.ndarray  # (n,) float64 reward of the step
    terminal: np.ndarray  # (n,) bool, the session ended at this step

    @property
    def n_sessions(self) -> int:
        return int(self.session[-1]) + 1 if len(self.session) else 0

    def observations(self) -> dict[str, np.ndarray]:
        """The logged states as one batched LiveStream observation (what policies read)."""
        return {"viewer": self.viewer, "candidates": self.candidates,
                "mask": self.mask.astype(np.int8)}


def check_sessions(data: Sessions) -> None:
    """Raise LogError naming the first way `data` is not a log of complete sessions."""
    n = len(data.action)
    if n == 0:
        raise LogError("the session log has no rows")
    k = data.mask.shape[1] if data.mask.ndim == 2 else -1
    shapes = {"session": (n,), "step": (n,), "mask": (n, k), "action": (n,),
              "behaviour": (n, k), "reward": (n,), "terminal": (n,)}
    for name, shape in shapes.items():
        if getattr(data, name).shape != shape:
            raise LogError(f"sessions.{name} must have shape {shape}, got "
                           f"{getattr(data, name).shape}")
    if len(data.viewer) != n or data.candidates.shape[:2] != (n, k):
        raise LogError("sessions.viewer and sessions.candidates must have one row per step")
    starts = np.r_[True, data.session[1:] != data.session[:-1]]
    ids = np.cumsum(starts) - 1
    if data.session[0] != 0 or np.any(data.session != ids):
        raise LogError("sessions.session must number sessions 0, 1, 2, ... in row order")
    expected_step = np.arange(n) - np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    if np.any(data.step != expected_step):
        raise LogError("sessions.step must count 0, 1, 2, ... within each session")
    last = np.r_[starts[1:], True]
    if np.any(data.terminal != last):
        raise LogError("every session must end with its one terminal row (drop incomplete "
                       "sessions with complete_sessions)")
    if np.any(data.action < 0) or np.any(data.action >= k):
        raise LogError(f"sessions.action must lie in [0, {k})")
    check_distribution(data, data.behaviour, "behaviour")
    if np.any(data.behaviour[np.arange(n), data.action] <= 0):
        raise LogError("the behaviour gave probability 0 to a logged action")
    if not np.all(np.isfinite(data.reward)):
        raise LogError("sessions.reward has non-finite values")


def check_distribution(data: Sessions, dist: np.ndarray, name: str) -> None:
    """Raise LogError unless `dist` is `(n, K)`, non-negative and sums to 1 per row."""
    if dist.shape != data.mask.shape:
        raise LogError(f"{name} must have shape {data.mask.shape}, got {dist.shape}")
    if np.any(dist < 0) or not np.allclose(dist.sum(axis=1), 1.0, atol=1e-6):
        raise LogError(f"every row of {name} must be a distribution (>= 0, summing to 1)")


def complete_sessions(data: Sessions) -> Sessions:
    """`data` without the sessions whose last row is not terminal, renumbered 0, 1, ..."""
    last = np.r_[data.session[1:] != data.session[:-1], True]
    ended = np.unique(data.session[last & data.terminal])
    keep = np.isin(data.session, ended)
    kept = Sessions(*(a[keep] for a in data))
    return kept._replace(session=np.searchsorted(ended, kept.session).astype(np.int64))


def forced_steps(data: Sessions) -> np.ndarray:
    """`(n,)` bool: steps with no allowed candidate, where no policy has a choice."""
    return ~data.mask.any(axis=1)


def target_distribution(policy: Any, data: Sessions) -> np.ndarray:
    """`(n, K)` `policy.probabilities` at every logged state; forced steps put all the
    mass on the logged action (the env's fill), as the behaviour's row does."""
    dist = np.array(policy.probabilities(data.observations()), dtype=np.float64)
    if dist.ndim != 2:
        raise LogError(f"{type(policy).__name__} recommends slates; session estimates here "
                       "score single recommendations")
    return with_forced(data, dist)


def with_forced(data: Sessions, dist: np.ndarray) -> np.ndarray:
    """`dist` with every forced step's row one-hot at the logged action."""
    forced = forced_steps(data)
    if forced.any():
        dist = dist.copy()
        dist[forced] = 0.0
        dist[np.flatnonzero(forced), data.action[forced]] = 1.0
    return dist


# ------------------------------------------------------------------ padded views
def padded(data: Sessions, values: np.ndarray) -> np.ndarray:
    """`(S, H)` per-step `values` laid out by (session, step); 0 after a session ends."""
    out = np.zeros((data.n_sessions, int(data.step.max()) + 1))
    out[data.session, data.step] = values
    return out


def ratios(data: Sessions, target: np.ndarray) -> np.ndarray:
    """`(n,)` per-step importance ratio pi(a_t|s_t) / b(a_t|s_t)."""
    rows = np.arange(len(data.action))
    return target[rows, data.action] / data.behaviour[rows, data.action]


def cumulative_weights(data: Sessions, target: np.ndarray) -> np.ndarray:
    """`(S, H)` W_{i,t}: the product of the ratios up to step t, held after the end."""
    return ratio_weights(data, ratios(data, target))


def ratio_weights(data: Sessions, rho: np.ndarray) -> np.ndarray:
    """`(S, H)` W_{i,t} from per-step ratios `rho` `(n,)` (whatever the action is: one
    candidate, or a whole slate in `liveq.ope.slate_sessions`)."""
    log_rho = padded(data, np.log(np.maximum(rho, 1e-300)))
    zero = padded(data, (rho == 0).astype(float))
    w = np.exp(np.cumsum(log_rho, axis=1))
    return np.where(np.cumsum(zero, axis=1) > 0, 0.0, w)


def discounts(horizon: int, gamma: float) -> np.ndarray:
    return gamma ** np.arange(horizon, dtype=np.float64)


def _normalised(w: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """`(B, S, H)` c_i W_{i,t} / sum_j c_j W_{j,t} (0 where every weight is 0)."""
    cw = counts[..., :, None] * w
    total = cw.sum(axis=-2, keepdims=True)
    return np.divide(cw, total, out=np.zeros_like(cw), where=total > 0)


def _counts(data: Sessions, counts: np.ndarray | None) -> np.ndarray:
    return np.ones(data.n_sessions) if counts is None else np.asarray(counts, dtype=float)


# ------------------------------------------------------------------ estimators
def session_returns(data: Sessions, gamma: float = 1.0) -> np.ndarray:
    """`(S,)` each logged session's (discounted) return."""
    rewards = padded(data, data.reward)
    return rewards @ discounts(rewards.shape[1], gamma)


def on_policy_value(data: Sessions, gamma: float = 1.0,
                    counts: np.ndarray | None = None) -> float | np.ndarray:
    """Mean (discounted) return of the logged sessions: the behaviour's own value."""
    c = _counts(data, counts)
    return _value(c @ session_returns(data, gamma) / c.sum(axis=-1))


def pdwis(data: Sessions, target: np.ndarray, gamma: float = 1.0,
          counts: np.ndarray | None = None) -> float | np.ndarray:
    """Per-decision weighted importance sampling over sessions (see the module doc);
    `counts` `(S,)` or `(B, S)` gives one estimate per row."""
    return weighted_returns(data, cumulative_weights(data, target), gamma, counts)


def weighted_returns(data: Sessions, weights: np.ndarray, gamma: float = 1.0,
                     counts: np.ndarray | None = None) -> float | np.ndarray:
    """PDWIS from the cumulative weights `(S, H)` (`ratio_weights`)."""
    c = _counts(data, counts)
    w = _normalised(weights, c)
    rewards = padded(data, data.reward)
    return _value((w * rewards).sum(axis=-2) @ discounts(rewards.shape[1], gamma))


def wdr(data: Sessions, target: np.ndarray, q_hat: np.ndarray, gamma: float = 1.0,
        counts: np.ndarray | None = None) -> float | np.ndarray:
    """Weighted doubly robust over sessions with the model `q_hat` `(n, K)` of Q^pi (or
    `(B, n, K)`, one model per row of `counts`)."""
    rows = np.arange(len(data.action))
    return doubly_robust(data, cumulative_weights(data, target), q_hat[..., rows, data.action],
                         (q_hat * target).sum(axis=-1), gamma, counts)


def doubly_robust(data: Sessions, weights: np.ndarray, q_logged: np.ndarray, v: np.ndarray,
                  gamma: float = 1.0, counts: np.ndarray | None = None) -> float | np.ndarray:
    """WDR from the cumulative weights `(S, H)`, the model's value of the logged action
    `q_logged` and of the target's choice `v` (each `(n,)`, or `(B, n)` per row of
    `counts`)."""
    c = _counts(data, counts)
    w = _normalised(weights, c)
    previous = np.concatenate([np.broadcast_to(c[..., :, None] / c.sum(axis=-1)[..., None,
                                                                                 None],
                                               w.shape[:-1] + (1,)), w[..., :-1]], axis=-1)
    q_logged, v = padded_batch(data, q_logged), padded_batch(data, v)
    rewards = padded(data, data.reward)
    per_step = (w * (rewards - q_logged) + previous * v).sum(axis=-2)
    return _value(per_step @ discounts(rewards.shape[1], gamma))


def padded_batch(data: Sessions, values: np.ndarray) -> np.ndarray:
    """`padded` for `(n,)` or `(B, n)` values."""
    if values.ndim == 1:
        return padded(data, values)
    return np.stack([padded(data, v) for v in values])


def effective_sessions(data: Sessions, target: np.ndarray) -> float:
    """Effective sample size of the whole-session weights, (sum W)^2 / sum W^2, in
    sessions: how many on-policy sessions the log is worth for this target."""
    return effective_from_weights(cumulative_weights(data, target))


def effective_from_weights(weights: np.ndarray) -> float:
    """`effective_sessions` from the cumulative weights `(S, H)`."""
    w = weights[:, -1]
    total = (w ** 2).sum()
    return float(w.sum() ** 2 / total) if total > 0 else 0.0


def _value(x: np.ndarray) -> float | np.ndarray:
    return float(x) if np.ndim(x) == 0 else x
