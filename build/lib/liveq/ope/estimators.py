"""Off-policy estimators for contextual bandits: IPS, SNIPS, DM, DR and switch-DR.

Inputs follow Open Bandit Pipeline (obp): each logged round `i` has a reward `r_i`, the
action `a_i` the behaviour policy took with probability `pscore_i`, the target policy's
action distribution `pi_e[i]` over all actions and, for DM/DR, a reward model's
estimates `q_hat[i]` of every action's expected reward. With `w_i = pi_e[i, a_i] / pscore_i`:

    IPS        mean(w r)                                   (Horvitz-Thompson)
    SNIPS      sum(w r) / sum(w)                           (self-normalised)
    DM         mean(q_hat(x, pi_e))                        q_hat(x, pi) = sum_a pi(a|x) q_hat(x, a)
    DR         mean(q_hat(x, pi_e) + w (r - q_hat(x, a)))  (Dudik et al. 2011)
    switch-DR  DR's correction only where w <= tau         (Wang et al. 2017)

`clip` caps the importance weight (`min(w, clip)`) in IPS, SNIPS and DR. Every estimator
is a function of four per-round numbers (r, w, q_hat(x, a), q_hat(x, pi_e)), so
`condense` rewrites a log with two action columns and the same estimates, which makes
the bootstrap O(n) per replicate. The reward model for DM and DR is a ridge or logistic
regression on round and action features (scikit-learn's, through `liveq.core.numerics`),
cross-fitted over K folds like obp's `RegressionModel.fit_predict`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal, NamedTuple

import numpy as np

from liveq.core.config import require
from liveq.core.numerics import fit_logistic, fit_ridge, sigmoid


class LoggedBandit(NamedTuple):
    """A logged contextual bandit and one target policy, in obp's shapes."""

    reward: np.ndarray  # (n,) observed reward
    action: np.ndarray  # (n,) int, logged action
    pscore: np.ndarray  # (n,) behaviour probability of the logged action
    pi_e: np.ndarray  # (n, n_actions) target policy's action distribution
    q_hat: np.ndarray | None = None  # (n, n_actions) estimated expected rewards


Estimator = Callable[[LoggedBandit], float]  # batched input (see bootstrap_cis): an array


@dataclass(kw_only=True)
class EstimatorConfig:
    """Settings of the estimators, the reward model and the bootstrap."""

    clip: float | None = None
    """Largest importance weight in IPS, SNIPS and DR; None keeps the weights as they are."""
    switch_tau: float = 10.0
    """Switch-DR drops DR's correction in rounds whose importance weight exceeds this."""
    n_folds: int = 3
    """Cross-fitting folds of the reward model (1 fits and predicts on all rounds)."""
    l2: float = 1.0
    """L2 penalty of the reward model's weights (ridge lambda; 1/C of logistic regression)."""
    n_boot: int = 1000
    """Bootstrap replicates of each confidence interval."""
    alpha: float = 0.05
    """Confidence intervals cover 1 - alpha."""

    def validate(self) -> None:
        require(self.clip is None or self.clip > 0, f"clip must be positive, got {self.clip}")
        require(self.switch_tau >= 0, f"switch_tau must be >= 0, got {self.switch_tau}")
        require(self.n_folds >= 1, f"n_folds must be at least 1, got {self.n_folds}")
        require(self.l2 >= 0, f"l2 must be >= 0, got {self.l2}")
        require(self.n_boot >= 10, f"n_boot must be at least 10, got {self.n_boot}")
        require(0 < self.alpha < 1, f"alpha must be in (0, 1), got {self.alpha}")


# ------------------------------------------------------------------ estimators
def check_bandit(data: LoggedBandit) -> None:
    """Raise ValueError naming the first input whose shape or values make no sense."""
    n = len(data.reward)
    if data.action.shape != (n,) or data.pscore.shape != (n,) or data.pi_e.ndim != 2 \
            or len(data.pi_e) != n:
        raise ValueError(f"reward, action and pscore must be (n,) and pi_e (n, n_actions); "
                         f"got {data.reward.shape}, {data.action.shape}, "
                         f"{data.pscore.shape}, {data.pi_e.shape}")
    if data.q_hat is not None and data.q_hat.shape != data.pi_e.shape:
        raise ValueError(f"q_hat must have pi_e's shape {data.pi_e.shape}, got "
                         f"{data.q_hat.shape}")
    if n == 0:
        raise ValueError("the log has no rounds")
    if data.action.min() < 0 or data.action.max() >= data.pi_e.shape[1]:
        raise ValueError(f"actions must lie in [0, {data.pi_e.shape[1]})")
    if not np.all((data.pscore > 0) & (data.pscore <= 1)):
        raise ValueError("pscore must lie in (0, 1]")
    if not np.allclose(data.pi_e.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("every row of pi_e must sum to 1")


def _at_logged(values: np.ndarray, action: np.ndarray) -> np.ndarray:
    """`(..., n)` values[..., i, action[..., i]] of `(..., n, n_actions)` values."""
    return np.take_along_axis(values, action[..., None], axis=-1)[..., 0]


def _value(x: np.ndarray) -> float | np.ndarray:
    return float(x) if np.ndim(x) == 0 else x


def importance_weight(data: LoggedBandit, clip: float | None = None) -> np.ndarray:
    """`(n,)` pi_e(a_i | x_i) / pscore_i, capped at `clip` when given."""
    w = _at_logged(data.pi_e, data.action) / data.pscore
    return w if clip is None else np.minimum(w, clip)


def _model_terms(data: LoggedBandit) -> tuple[np.ndarray, np.ndarray]:
    """`(n,)` q_hat(x, a) of the logged action and `(n,)` q_hat(x, pi_e)."""
    if data.q_hat is None:
        raise ValueError("this estimator needs q_hat, the reward model's estimates")
    return _at_logged(data.q_hat, data.action), (data.pi_e * data.q_hat).sum(axis=-1)


def ips(data: LoggedBandit, clip: float | None = None) -> float:
    """Inverse propensity scoring: mean(w r)."""
    return _value(np.mean(importance_weight(data, clip) * data.reward, axis=-1))


def snips(data: LoggedBandit, clip: float | None = None) -> float:
    """Self-normalised IPS: sum(w r) / sum(w); 0 when no weight is positive."""
    w = importance_weight(data, clip)
    total = w.sum(axis=-1)
    weighted = (w * data.reward).sum(axis=-1)
    return _value(np.where(total > 0, weighted / np.where(total > 0, total, 1.0), 0.0))


def dm(data: LoggedBandit) -> float:
    """Direct method: mean over rounds of the model's value of pi_e."""
    return _value(np.mean(_model_terms(data)[1], axis=-1))


def dr(data: LoggedBandit, clip: float | None = None) -> float:
    """Doubly robust: DM plus the importance-weighted residual of the logged action."""
    q_logged, q_target = _model_terms(data)
    correction = importance_weight(data, clip) * (data.reward - q_logged)
    return _value(np.mean(q_target + correction, axis=-1))


def switch_dr(data: LoggedBandit, tau: float) -> float:
    """Switch-DR: DR's correction only in rounds with importance weight <= tau."""
    q_logged, q_target = _model_terms(data)
    w = importance_weight(data)
    correction = np.where(w <= tau, w * (data.reward - q_logged), 0.0)
    return _value(np.mean(q_target + correction, axis=-1))


def make_estimators(config: EstimatorConfig) -> dict[str, Estimator]:
    """The five estimators by name, with the config's clipping and switch threshold."""
    return {
        "ips": partial(ips, clip=config.clip),
        "snips": partial(snips, clip=config.clip),
        "dm": dm,
        "dr": partial(dr, clip=config.clip),
        "switch-dr": partial(switch_dr, tau=config.switch_tau),
    }


# ------------------------------------------------------------------ bootstrap
def condense(data: LoggedBandit) -> LoggedBandit:
    """The same log with two action columns: the logged action (0) and all others (1).

    Column 1 lumps the other actions together with the target's remaining probability
    and the q_hat that keeps q_hat(x, pi_e) unchanged, so every estimator here returns
    the same value on the condensed log.
    """
    n = len(data.action)
    rows = np.arange(n)
    p = data.pi_e[rows, data.action]
    pi_e = np.stack([p, 1.0 - p], axis=1)
    q_hat = None
    if data.q_hat is not None:
        q_logged, q_target = _model_terms(data)
        rest = np.where(p < 1.0, (q_target - p * q_logged) / np.maximum(1.0 - p, 1e-300), 0.0)
        q_hat = np.stack([q_logged, rest], axis=1)
    return LoggedBandit(data.reward, np.zeros(n, dtype=np.int64), data.pscore, pi_e, q_hat)


def take_rounds(data: LoggedBandit, rows: np.ndarray) -> LoggedBandit:
    """The log restricted to (or resampled at) `rows`."""
    return LoggedBandit(*(None if a is None else a[rows] for a in data))


def bootstrap_cis(estimators: dict[str, Estimator], data: LoggedBandit, n_boot: int = 1000,
                  alpha: float = 0.05, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """`{name: (estimate on all rounds, low, high)}`, percentile intervals over resampled
    rounds; all estimators share the same resamples.

    Replicates are evaluated in batches: the estimators here accept leading batch axes
    (reward `(batch, n)`, pi_e `(batch, n, n_actions)`) and return one value per batch
    row. The reward model's `q_hat` is held fixed across replicates, as obp does.
    """
    check_bandit(data)
    small = condense(data)
    rng = np.random.default_rng(seed)
    n = len(small.action)
    replicates = np.empty((n_boot, len(estimators)))
    batch = max(1, min(n_boot, 2_000_000 // n))
    for start in range(0, n_boot, batch):
        rows = rng.integers(0, n, (min(batch, n_boot - start), n))
        sample = take_rounds(small, rows)
        for j, estimator in enumerate(estimators.values()):
            replicates[start: start + len(rows), j] = estimator(sample)
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2], axis=0)
    return {name: (estimator(data), float(low[j]), float(high[j]))
            for j, (name, estimator) in enumerate(estimators.items())}


def bootstrap_ci(estimator: Estimator, data: LoggedBandit, n_boot: int = 1000,
                 alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float]:
    """(estimate on all rounds, low, high) of one estimator; see `bootstrap_cis`."""
    return bootstrap_cis({"estimator": estimator}, data, n_boot, alpha, seed)["estimator"]


# ------------------------------------------------------------------ reward model
class RewardFeatures(NamedTuple):
    """Features of every (round, action) pair, in parts a linear model adds up.

    The score of action `a` in round `i` is
    `b + context[i] @ w_c + action_context[a] @ w_a + pair[i, a] @ w_p`.
    """

    context: np.ndarray | None = None  # (n, d_context) round features
    action_context: np.ndarray | None = None  # (n_actions, d_action) action features
    pair: np.ndarray | None = None  # (n, n_actions, d_pair) round-and-action features


def design_matrix(features: RewardFeatures, rows: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """`(len(rows), d)` float64 features of the pairs (rows[j], actions[j])."""
    parts = []
    if features.context is not None:
        parts.append(features.context[rows])
    if features.action_context is not None:
        parts.append(features.action_context[actions])
    if features.pair is not None:
        parts.append(features.pair[rows, actions])
    if not parts:
        raise ValueError("RewardFeatures has no features")
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts], axis=1)


def all_action_scores(features: RewardFeatures, rows: np.ndarray, weights: np.ndarray,
                      intercept: float, n_actions: int) -> np.ndarray:
    """`(len(rows), n_actions)` linear scores of every action in `rows`."""
    scores = np.full((len(rows), n_actions), intercept, dtype=np.float64)
    start = 0
    for part, per_action in ((features.context, False), (features.action_context, True),
                             (features.pair, False)):
        if part is None:
            continue
        width = part.shape[-1]
        w = weights[start: start + width]
        start += width
        if per_action:
            scores += np.asarray(part, dtype=np.float64) @ w
        elif part.ndim == 2:
            scores += (np.asarray(part[rows], dtype=np.float64) @ w)[:, None]
        else:
            scores += np.asarray(part[rows], dtype=np.float64) @ w
    return scores


def fold_ids(n: int, n_folds: int, seed: int) -> np.ndarray:
    """`(n,)` fold of each round: a seeded shuffle cut into `n_folds` near-equal parts."""
    folds = np.empty(n, dtype=np.int64)
    folds[np.random.default_rng(seed).permutation(n)] = np.arange(n) * n_folds // n
    return folds


def cross_fit(features: RewardFeatures, action: np.ndarray, reward: np.ndarray, *,
              n_actions: int, kind: Literal["linear", "logistic"], l2: float,
              folds: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """`(n, n_actions)` q_hat: each round predicted by a model fitted on the other folds.

    With one fold the model is fitted and evaluated on all rounds. `groups` fits one
    model per group (obp fits one per list position).
    """
    n = len(action)
    groups = np.zeros(n, dtype=np.int64) if groups is None else groups
    one_fold = len(np.unique(folds)) == 1
    q_hat = np.empty((n, n_actions))
    for fold in np.unique(folds):
        for group in np.unique(groups):
            test = np.flatnonzero((folds == fold) & (groups == group))
            train = test if one_fold else np.flatnonzero((folds != fold) & (groups == group))
            if len(train) == 0:
                raise ValueError(f"no training rounds for fold {fold}, group {group}")
            x = design_matrix(features, train, action[train])
            fit = fit_logistic if kind == "logistic" else fit_ridge
            w, b = fit(x, reward[train].astype(np.float64), l2)
            scores = all_action_scores(features, test, w, b, n_actions)
            q_hat[test] = sigmoid(scores) if kind == "logistic" else scores
    return q_hat
