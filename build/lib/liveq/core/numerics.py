"""Small numeric helpers shared by the log analysis, the off-policy estimators and models.

Model fitting is left to scikit-learn (`fit_logistic`, `fit_ridge` wrap its solvers with
liveq's parametrisation); it is imported inside them because importing it takes about a
second and most commands never fit a model.
"""

from __future__ import annotations

import warnings

import numpy as np

LOGISTIC_TOL = 1e-10
"""Stopping tolerance of the logistic fit: tight, so estimates do not move with the
solver's path (DM and DR on Open Bandit match obp's figures to 2e-3 relative)."""


def sigmoid(z: np.ndarray) -> np.ndarray:
    """`1 / (1 + exp(-z))` in `z`'s own precision; a very negative `z` gives exactly 0
    (exp overflows to infinity, silently)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(z)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float,
                 max_iter: int = 10_000) -> tuple[np.ndarray, float]:
    """Weights `(n_features,)` and intercept of an L2-penalised logistic regression.

    Minimises the summed log loss plus `l2 / 2 * |w|^2` (the intercept is not penalised):
    scikit-learn's `LogisticRegression` with `C = 1 / l2` (`C = inf`, no penalty, when
    `l2 == 0`), solved by Newton steps (its `newton-cholesky` solver) to a tight tolerance.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y, dtype=np.float64)
    if np.all(y == y[0]):  # one class: the optimum is the constant (infinite without l2)
        raise ValueError("fit_logistic needs both labels 0 and 1 among the rows")
    model = LogisticRegression(C=1.0 / l2 if l2 > 0 else np.inf, tol=LOGISTIC_TOL,
                               max_iter=max_iter, solver="newton-cholesky")
    with warnings.catch_warnings():
        # Separable rows without a penalty have no finite optimum: the weights grow until
        # max_iter, the documented answer here rather than an error.
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        model.fit(np.asarray(x, dtype=np.float64), y.astype(np.int64))
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def fit_ridge(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Weights and intercept of least squares with `l2 * |w|^2` on the weights only
    (scikit-learn's `Ridge` with `alpha = l2`)."""
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=l2, solver="auto").fit(np.asarray(x, dtype=np.float64),
                                               np.asarray(y, dtype=np.float64))
    return np.asarray(model.coef_, dtype=np.float64), float(model.intercept_)
