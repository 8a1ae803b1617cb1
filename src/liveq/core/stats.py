"""Confidence intervals for per-episode metrics, without scipy.

Student's t quantiles come from inverting the t CDF, which is written with the regularised
incomplete beta function (continued fraction of Numerical Recipes, section 6.4); the
result matches tables to every printed digit. Ratios of sums such as
CTR = sum(clicks) / sum(impressions) over sessions get a delta-method interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

_EPS = 1e-15
_TINY = 1e-300


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of I_x(a, b), evaluated by the modified Lentz method."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, 10_000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            result *= c * d
        if abs(c * d - 1.0) < _EPS:
            return result
    raise RuntimeError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) = B(x; a, b) / B(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    # The fraction converges fast only for x below the mean; use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom (`math.inf`: normal)."""
    if math.isinf(df):
        return 0.5 * math.erfc(-t / math.sqrt(2.0))
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def _invert_increasing(cdf: Callable[[float], float], p: float) -> float:
    """The x >= 0 with cdf(x) = p >= 0.5, by bracketing then bisection to machine precision."""
    low, high = 0.0, 1.0
    while cdf(high) < p:
        low, high = high, 2.0 * high
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        low, high = (mid, high) if cdf(mid) < p else (low, mid)
    return 0.5 * (low + high)


def student_t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p, for 0 < p < 1 and df > 0 (`math.inf`: normal quantile)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if not df > 0:
        raise ValueError(f"df must be positive, got {df}")
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    return _invert_increasing(lambda t: student_t_cdf(t, df), p)


def _two_sided(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return 0.5 * (1.0 + confidence)


def mean_ci(values: Sequence[float] | np.ndarray,
            confidence: float = 0.95) -> tuple[float, float, float]:
    """`(mean, low, high)`: the mean with its Student's t confidence interval.

    `mean +- t_{(1+confidence)/2, n-1} * s / sqrt(n)` with `s` the sample standard
    deviation (ddof=1). With one value there is no spread to estimate, so the interval is
    the value itself, `(x, x, x)`; with none, all three are NaN.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    quantile = _two_sided(confidence)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    half = student_t_quantile(quantile, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def difference_ci(a: Sequence[float], b: Sequence[float],
                  confidence: float = 0.95) -> tuple[float, float, float]:
    """`(mean, low, high)` of `mean_a - mean_b` for two independent estimates (Welch).

    Each of `a`, `b` is `(mean, low, high, n)`: a mean with its Student's t interval at
    `confidence` over `n` values (as `mean_ci` gives). Their standard errors are read back
    from the half-widths and combined, with Welch-Satterthwaite degrees of freedom. This
    is the test that two intervals overlapping does not give: two 95% intervals can
    overlap while the difference of the means is clearly away from 0.
    """
    quantile = _two_sided(confidence)
    parts = []
    for mean, low, high, n in (a, b):
        if n < 1 or not math.isfinite(mean):
            return math.nan, math.nan, math.nan
        se = 0.0 if n == 1 else (high - low) / 2 / student_t_quantile(quantile, n - 1)
        parts.append((mean, se, n))
    (mean_a, se_a, n_a), (mean_b, se_b, n_b) = parts
    diff, var = mean_a - mean_b, se_a ** 2 + se_b ** 2
    if var == 0.0:
        return diff, diff, diff
    df = var ** 2 / sum(se ** 4 / (n - 1) for _, se, n in parts if n > 1)
    half = student_t_quantile(quantile, df) * math.sqrt(var)
    return diff, diff - half, diff + half


def ratio_ci(numerators: Sequence[float] | np.ndarray, denominators: Sequence[float] | np.ndarray,
             confidence: float = 0.95) -> tuple[float, float, float]:
    """`(ratio, low, high)` for R = sum(numerators) / sum(denominators), delta method.

    Per unit i (a session, say: clicks x_i over impressions y_i), the delta method gives
    `se(R) = sqrt(sum((x_i - R y_i)^2) / (n - 1) / n) / mean(y)`, and the interval is
    `R +- t_{(1+confidence)/2, n-1} * se`; with every y_i = 1 it is exactly `mean_ci`.
    One unit gives `(R, R, R)`; no units, or a zero denominator sum, give NaNs.
    """
    x = np.asarray(numerators, dtype=np.float64).reshape(-1)
    y = np.asarray(denominators, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"numerators {x.shape} and denominators {y.shape} differ in length")
    quantile = _two_sided(confidence)
    if x.size == 0 or y.sum() == 0:
        return math.nan, math.nan, math.nan
    ratio = float(x.sum() / y.sum())
    if x.size == 1:
        return ratio, ratio, ratio
    residuals = x - ratio * y
    se = math.sqrt(float(residuals @ residuals) / (x.size - 1) / x.size) / float(y.mean())
    half = student_t_quantile(quantile, x.size - 1) * se
    return ratio, ratio - half, ratio + half


def summarise(per_episode: dict[str, np.ndarray],
              confidence: float = 0.95) -> dict[str, dict[str, float]]:
    """`{metric: {"mean", "ci_low", "ci_high", "n"}}` from per-episode values of each metric."""
    summary = {}
    for name, values in per_episode.items():
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        mean, low, high = mean_ci(x, confidence)
        summary[name] = {"mean": mean, "ci_low": low, "ci_high": high, "n": x.size}
    return summary


def intervals_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two closed intervals share a point; NaN bounds never overlap.

    Each is `(low, high)`, or the `(mean, low, high)` of `mean_ci` / `ratio_ci`: the last
    two entries are the bounds.
    """
    (a_low, a_high), (b_low, b_high) = a[-2:], b[-2:]
    return bool(a_low <= b_high and b_low <= a_high)
