"""Two-sample statistics for A/B tests on per-viewer outcomes.

Welch's t-test (unequal variances, scipy's `ttest_ind(equal_var=False)`), a percentile
bootstrap of the difference in means, the two-sample sample size for a minimum
detectable effect, and CUPED (Deng et al. 2013): subtract theta * (x - mean(x)) from each
viewer's outcome y, with x a pre-period covariate and theta = cov(x, y) / var(x) pooled
over both arms, which keeps the mean and cuts the variance by a factor 1 - rho^2.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def _arrays(control, treatment) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(control, dtype=np.float64).reshape(-1)
    b = np.asarray(treatment, dtype=np.float64).reshape(-1)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"each arm needs at least 2 values, got {a.size} and {b.size}")
    return a, b


def welch(control, treatment, confidence: float = 0.95) -> dict[str, float]:
    """Lift of treatment over control: absolute and relative, 95% CI, Welch p-value.

    The relative lift's interval is the absolute one divided by the control mean (the
    control mean's own noise ignored; it is far smaller than the difference's).
    """
    a, b = _arrays(control, treatment)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    diff, se = float(b.mean() - a.mean()), math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1)) if se > 0 else math.inf
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(stats.ttest_ind(b, a, equal_var=False).pvalue) if se > 0 else 1.0
    base = float(a.mean())

    def rel(value: float) -> float:
        return value / base if base != 0 else math.nan

    return {"control": base, "treatment": float(b.mean()), "diff": diff,
            "ci_low": diff - half, "ci_high": diff + half, "rel": rel(diff),
            "rel_low": rel(diff - half), "rel_high": rel(diff + half), "se": se, "df": df,
            "p": p, "n_control": a.size, "n_treatment": b.size}


def bootstrap_diff(control, treatment, n_boot: int = 2000, seed: int = 0,
                   confidence: float = 0.95) -> dict[str, float]:
    """Percentile bootstrap of mean(treatment) - mean(control), resampling viewers in
    each arm; the p-value is twice the smaller share of resampled differences on either
    side of zero after centring them on zero (the null of equal means)."""
    a, b = _arrays(control, treatment)
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        diffs[i] = rng.choice(b, b.size).mean() - rng.choice(a, a.size).mean()
    diff = float(b.mean() - a.mean())
    centred = diffs - diffs.mean()
    p = 2 * min((centred >= abs(diff)).mean(), (centred <= -abs(diff)).mean())
    tail = (1 - confidence) / 2
    low, high = np.quantile(diffs, [tail, 1 - tail])
    return {"diff": diff, "ci_low": float(low), "ci_high": float(high),
            "p": float(min(1.0, max(p, 1.0 / n_boot)))}


def sample_size(sd: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Viewers needed per arm to detect an absolute difference `mde` in means with a
    two-sided test: n = 2 (z_{1-alpha/2} + z_{power})^2 sd^2 / mde^2, rounded up."""
    if not mde > 0:
        raise ValueError(f"mde must be positive, got {mde}")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return int(math.ceil(2 * (z * sd / mde) ** 2))


def cuped(y, x) -> tuple[np.ndarray, float, float]:
    """`(adjusted, theta, variance_reduction)`: y - theta (x - mean x), theta = cov/var.

    Pass both arms' viewers together so one theta serves both (the adjustment then keeps
    the difference in means unbiased). Reduction is 1 - var(adjusted) / var(y).
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"y {y.shape} and x {x.shape} differ in length")
    vx = x.var(ddof=1)
    theta = float(np.cov(x, y)[0, 1] / vx) if vx > 0 else 0.0
    adjusted = y - theta * (x - x.mean())
    vy = y.var(ddof=1)
    return adjusted, theta, float(1 - adjusted.var(ddof=1) / vy) if vy > 0 else 0.0
