import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from liveq.core.stats import (
    difference_ci,
    intervals_overlap,
    mean_ci,
    ratio_ci,
    regularized_incomplete_beta,
    student_t_cdf,
    student_t_quantile,
    summarise,
)


@pytest.mark.parametrize(("p", "df", "table"), [
    (0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 5, 2.571), (0.975, 10, 2.228),
    (0.975, 30, 2.042), (0.975, math.inf, 1.960), (0.95, 10, 1.812), (0.95, math.inf, 1.645),
    (0.995, 4, 4.604), (0.9995, 1, 636.619),
])
def test_t_quantile_matches_tables(p, df, table):
    assert student_t_quantile(p, df) == pytest.approx(table, abs=5e-4)


def test_t_quantile_matches_closed_forms():
    # df=1 is Cauchy: t = tan(pi (p - 1/2)); df=2: t = (2p - 1) / sqrt(2 p (1 - p))
    assert student_t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-10)
    assert student_t_quantile(0.975, 2) == pytest.approx(0.95 / math.sqrt(2 * 0.975 * 0.025),
                                                         rel=1e-10)
    assert student_t_quantile(0.025, 5) == -student_t_quantile(0.975, 5)
    assert student_t_quantile(0.5, 7) == pytest.approx(0.0, abs=1e-12)


def test_t_quantile_rejects_bad_arguments():
    with pytest.raises(ValueError):
        student_t_quantile(1.0, 3)
    with pytest.raises(ValueError):
        student_t_quantile(0.9, 0)


def test_incomplete_beta_closed_forms():
    # I_x(1,1) = x;  I_x(a,1) = x^a;  I_x(1,b) = 1 - (1-x)^b;  I_0.5(a,a) = 0.5
    assert regularized_incomplete_beta(1.0, 1.0, 0.3) == pytest.approx(0.3, rel=1e-12)
    assert regularized_incomplete_beta(3.0, 1.0, 0.5) == pytest.approx(0.125, rel=1e-12)
    assert regularized_incomplete_beta(1.0, 4.0, 0.5) == pytest.approx(1 - 0.5**4, rel=1e-12)
    assert regularized_incomplete_beta(2.5, 2.5, 0.5) == pytest.approx(0.5, rel=1e-12)
    assert regularized_incomplete_beta(2.0, 3.0, 0.0) == 0.0
    assert regularized_incomplete_beta(2.0, 3.0, 1.0) == 1.0


def test_t_cdf_symmetry():
    assert student_t_cdf(0.0, 3) == pytest.approx(0.5)
    assert student_t_cdf(-1.3, 4) == pytest.approx(1 - student_t_cdf(1.3, 4), rel=1e-12)


def test_mean_ci_by_hand():
    # [1..5]: mean 3, s^2 = (4+1+0+1+4)/4 = 2.5, se = sqrt(2.5/5) = sqrt(0.5);
    # t(0.975, 4) = 2.776445 -> half = 2.776445 * 0.707107 = 1.963243
    mean, low, high = mean_ci([1, 2, 3, 4, 5])
    assert mean == 3.0
    assert (low, high) == pytest.approx((3 - 1.963243, 3 + 1.963243), abs=1e-6)
    # [2, 4]: mean 3, s^2 = 2, se = sqrt(2/2) = 1, t(0.975, 1) = 12.706205
    assert mean_ci([2.0, 4.0]) == pytest.approx((3.0, 3 - 12.706205, 3 + 12.706205), abs=1e-6)
    # 90%: [2, 4] uses t(0.95, 1) = tan(0.45 pi) = 6.313752
    assert mean_ci([2.0, 4.0], 0.9)[2] == pytest.approx(3 + 6.313752, abs=1e-6)


def test_mean_ci_small_samples():
    assert mean_ci([4.5]) == (4.5, 4.5, 4.5)
    assert all(math.isnan(v) for v in mean_ci([]))
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=1.0)


def test_ratio_ci_by_hand():
    # clicks [1,2,3] over impressions [2,2,4]: R = 6/8 = 0.75
    # residuals x - R y = [-0.5, 0.5, 0]; sum of squares 0.5; / (n-1) = 0.25; / n = 1/12
    # se = sqrt(1/12) / mean(y) = 0.288675 / (8/3) = 0.108253; t(0.975, 2) = 4.302653
    # half = 0.108253 * 4.302653 = 0.465776
    ratio, low, high = ratio_ci([1, 2, 3], [2, 2, 4])
    assert ratio == 0.75
    assert (low, high) == pytest.approx((0.75 - 0.465776, 0.75 + 0.465776), abs=1e-6)


def test_ratio_ci_with_unit_denominators_is_mean_ci():
    values = np.array([0.0, 1.0, 3.0, 2.5])
    np.testing.assert_allclose(ratio_ci(values, np.ones(4)), mean_ci(values), rtol=1e-12)


def test_ratio_ci_edge_cases():
    assert ratio_ci([3.0], [4.0]) == (0.75, 0.75, 0.75)
    assert all(math.isnan(v) for v in ratio_ci([1.0, 2.0], [0.0, 0.0]))
    assert all(math.isnan(v) for v in ratio_ci([], []))
    with pytest.raises(ValueError, match="length"):
        ratio_ci([1.0, 2.0], [1.0])


def test_summarise():
    summary = summarise({"return": np.array([2.0, 4.0]), "clicks": np.array([7.0])})
    assert summary["return"] == pytest.approx(
        {"mean": 3.0, "ci_low": 3 - 12.706205, "ci_high": 3 + 12.706205, "n": 2}, abs=1e-6)
    assert summary["clicks"] == {"mean": 7.0, "ci_low": 7.0, "ci_high": 7.0, "n": 1}


def test_intervals_overlap():
    assert intervals_overlap((0.0, 1.0), (0.5, 2.0))
    assert intervals_overlap((0.0, 1.0), (1.0, 2.0))  # closed: touching counts
    assert not intervals_overlap((0.0, 1.0), (1.5, 2.0))
    assert not intervals_overlap((1.5, 2.0), (0.0, 1.0))
    assert intervals_overlap(mean_ci([1, 2, 3]), (2.0, 2.0))  # (mean, low, high) triples
    assert not intervals_overlap((math.nan, math.nan), (0.0, 1.0))


def test_difference_ci_is_welch_interval():
    rng = np.random.default_rng(0)
    a, b = rng.normal(12.0, 1.0, size=10), rng.normal(11.0, 8.0, size=1000)
    got = difference_ci((*mean_ci(a), a.size), (*mean_ci(b), b.size))
    want = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert got[0] == pytest.approx(a.mean() - b.mean())
    assert got[1:] == pytest.approx((want.low, want.high), rel=1e-6)


def test_difference_ci_edge_cases():
    assert difference_ci((3.0, 3.0, 3.0, 1), (1.0, 1.0, 1.0, 1)) == (2.0, 2.0, 2.0)
    assert all(math.isnan(x) for x in difference_ci((1.0, 0.0, 2.0, 0), (1.0, 0.0, 2.0, 5)))
    one_sided = difference_ci((3.0, 3.0, 3.0, 1), mean_ci([0.0, 1.0, 2.0]) + (3,))
    assert one_sided[1:] == pytest.approx((3.0 - mean_ci([0.0, 1.0, 2.0])[2],
                                           3.0 - mean_ci([0.0, 1.0, 2.0])[1]))
