"""A/B statistics against scipy and hand formulas, and `liveq ab` end to end."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from liveq.cli.main import main
from liveq.core.ab_stats import bootstrap_diff, cuped, sample_size, welch


def test_welch_matches_scipy_and_the_welch_satterthwaite_interval():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 2, 50), rng.normal(11, 4, 80)
    r = welch(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert r["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert r["rel"] == pytest.approx((b.mean() - a.mean()) / a.mean())


def test_bootstrap_agrees_with_welch_on_large_samples():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 2000), rng.normal(0.1, 1, 2000)
    boot, w = bootstrap_diff(a, b, seed=0), welch(a, b)
    assert boot["ci_low"] == pytest.approx(w["ci_low"], abs=0.01)
    assert boot["ci_high"] == pytest.approx(w["ci_high"], abs=0.01)
    assert boot["p"] == pytest.approx(w["p"], abs=0.01)


def test_sample_size_is_the_textbook_formula():
    # n = 2 (1.959964 + 0.841621)^2 sd^2 / mde^2 = 15.6978 * 4 / 0.25 = 251.16 -> 252
    assert sample_size(2.0, 0.5) == 252
    assert sample_size(1.0, 0.1) == math.ceil(2 * (1.959964 + 0.841621) ** 2 / 0.01)


def test_cuped_cuts_variance_by_rho_squared_and_keeps_the_mean():
    rng = np.random.default_rng(3)
    rho, n = 0.8, 200_000
    x = rng.normal(size=n)
    y = 5 + rho * x + math.sqrt(1 - rho ** 2) * rng.normal(size=n)
    adjusted, theta, reduction = cuped(y, x)
    assert reduction == pytest.approx(rho ** 2, abs=0.01)
    assert theta == pytest.approx(rho, abs=0.01)
    assert adjusted.mean() == pytest.approx(y.mean())


def test_no_difference_rejects_at_about_alpha():
    rng = np.random.default_rng(4)
    rejected = [welch(rng.exponential(size=200), rng.exponential(size=200))["p"] < 0.05
                for _ in range(1000)]
    assert 0.03 <= np.mean(rejected) <= 0.07


def test_liveq_ab_end_to_end(tmp_path, capsys):
    out = tmp_path / "ab.json"
    assert main(["ab", "--control", "popular", "--treatment", "repeat", "--config",
                 "livestream_small", "--viewers", "40", "--days", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "CUPED return" in printed and "warning: underpowered" in printed
    result = json.loads(out.read_text())
    m = result["metrics"]["return"]
    assert m["n_control"] + m["n_treatment"] == 40
    assert m["ci_low"] <= m["diff"] <= m["ci_high"]


@pytest.mark.parametrize("flags, named", [
    (["--share", "1.0"], "--share"), (["--days", "0"], "--days"),
    (["--treatment", "nosuch"], "nosuch"), (["--treatment", "runs/missing"], "runs/missing")])
def test_liveq_ab_bad_input_exits_2_naming_it(flags, named, capsys):
    args = ["ab", "--control", "popular", "--treatment", "repeat", "--config",
            "livestream_small", "--viewers", "20", "--days", "1"]
    assert main(args + flags) == 2
    err = capsys.readouterr().err
    assert err.startswith("liveq: error:") and named in err


@pytest.mark.slow
def test_simulated_aa_test_rejects_at_no_more_than_about_alpha():
    """Popular against itself on 100 seeds: a real A/A test through the simulator."""
    from liveq.experiments.ab import ABConfig, run_ab

    p = [run_ab(ABConfig(control="popular", treatment="popular", config="livestream_small",
                         viewers=60, days=2, seed=s))["metrics"]["return"]["p"]
         for s in range(100)]
    assert np.mean(np.array(p) < 0.05) <= 0.10
