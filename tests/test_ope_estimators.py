"""Off-policy estimators, bootstrap and reward model against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liveq.core.config import ConfigError
from liveq.ope.estimators import (
    EstimatorConfig,
    LoggedBandit,
    RewardFeatures,
    all_action_scores,
    bootstrap_ci,
    bootstrap_cis,
    check_bandit,
    condense,
    cross_fit,
    design_matrix,
    dm,
    dr,
    fit_logistic,
    fit_ridge,
    fold_ids,
    importance_weight,
    ips,
    make_estimators,
    snips,
    switch_dr,
)

# Three rounds, two actions. Importance weights w = pi_e[a] / pscore = [2, 2, 0.4].
# q_hat(x, pi_e) = [0.5, 0.2, 1.8]; q_hat(x, a) = [0.5, 0.4, 1.0]; r - q_hat(x, a) =
# [0.5, -0.4, 1.0].
HAND = LoggedBandit(
    reward=np.array([1.0, 0.0, 2.0]),
    action=np.array([0, 1, 0]),
    pscore=np.array([0.5, 0.25, 0.5]),
    pi_e=np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]]),
    q_hat=np.array([[0.5, 1.0], [0.0, 0.4], [1.0, 2.0]]),
)


def test_importance_weights_by_hand():
    np.testing.assert_allclose(importance_weight(HAND), [2.0, 2.0, 0.4])
    np.testing.assert_allclose(importance_weight(HAND, clip=1.0), [1.0, 1.0, 0.4])


@pytest.mark.parametrize(("estimator", "expected"), [
    (ips, (2 * 1 + 2 * 0 + 0.4 * 2) / 3),  # 0.9333
    (lambda d: ips(d, clip=1.0), (1 + 0 + 0.8) / 3),  # 0.6
    (snips, 2.8 / 4.4),  # sum(w r) / sum(w)
    (lambda d: snips(d, clip=1.0), 1.8 / 2.4),
    (dm, (0.5 + 0.2 + 1.8) / 3),  # 0.8333
    (dr, ((0.5 + 2 * 0.5) + (0.2 - 2 * 0.4) + (1.8 + 0.4 * 1.0)) / 3),  # 1.0333
    (lambda d: dr(d, clip=1.0), ((0.5 + 0.5) + (0.2 - 0.4) + (1.8 + 0.4)) / 3),  # 1.0
    (lambda d: switch_dr(d, tau=1.0), (0.5 + 0.2 + (1.8 + 0.4)) / 3),  # only w <= 1 corrected
    (lambda d: switch_dr(d, tau=2.0), 3.1 / 3),  # every weight <= 2: DR
    (lambda d: switch_dr(d, tau=0.0), 2.5 / 3),  # no weight <= 0: DM
])
def test_estimators_by_hand(estimator, expected):
    assert estimator(HAND) == pytest.approx(expected, abs=1e-12)


def test_snips_without_positive_weight_is_zero():
    data = HAND._replace(pi_e=np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
    assert snips(data) == 0.0


def test_dm_needs_q_hat():
    with pytest.raises(ValueError, match="needs q_hat"):
        dm(HAND._replace(q_hat=None))


@pytest.mark.parametrize(("change", "message"), [
    ({"pscore": np.array([0.5, 0.0, 0.5])}, "pscore"),
    ({"action": np.array([0, 2, 0])}, "actions must lie"),
    ({"pi_e": np.array([[1.0, 0.0], [0.5, 0.6], [0.2, 0.8]])}, "sum to 1"),
    ({"reward": np.array([1.0, 0.0])}, "must be \\(n,\\)"),
    ({"q_hat": np.zeros((3, 3))}, "q_hat must have"),
])
def test_check_bandit_names_the_bad_input(change, message):
    with pytest.raises(ValueError, match=message):
        check_bandit(HAND._replace(**change))


def random_bandit(n: int, n_actions: int, seed: int) -> LoggedBandit:
    rng = np.random.default_rng(seed)
    pi_e = rng.dirichlet(np.ones(n_actions), size=n)
    behaviour = rng.dirichlet(np.ones(n_actions), size=n)
    action = np.array([rng.choice(n_actions, p=p) for p in behaviour])
    return LoggedBandit(rng.random(n), action, behaviour[np.arange(n), action], pi_e,
                        rng.random((n, n_actions)))


def test_condensed_log_gives_the_same_estimates():
    data = random_bandit(200, 5, seed=1)
    small = condense(data)
    assert small.pi_e.shape == (200, 2)
    for clip, tau in ((None, 10.0), (3.0, 1.5)):
        for name, estimator in make_estimators(EstimatorConfig(clip=clip,
                                                               switch_tau=tau)).items():
            assert estimator(small) == pytest.approx(estimator(data), abs=1e-12), name


def test_estimators_accept_a_batch_axis():
    data = condense(random_bandit(50, 4, seed=2))
    rows = np.random.default_rng(0).integers(0, 50, (3, 50))
    batch = LoggedBandit(*(a[rows] for a in data))
    for name, estimator in make_estimators(EstimatorConfig(clip=2.0)).items():
        each = [estimator(LoggedBandit(*(a[r] for a in data))) for r in rows]
        np.testing.assert_allclose(estimator(batch), each, atol=1e-12, err_msg=name)


def test_bootstrap_on_policy_mean_matches_the_normal_interval():
    rng = np.random.default_rng(3)
    n = 4000
    reward = (rng.random(n) < 0.3).astype(float)
    data = LoggedBandit(reward, np.zeros(n, dtype=np.int64), np.ones(n), np.ones((n, 1)))
    estimate, low, high = bootstrap_ci(ips, data, n_boot=2000, alpha=0.05, seed=0)
    assert estimate == reward.mean()
    half = 1.96 * reward.std() / math.sqrt(n)
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)
    assert low < estimate < high


def test_bootstrap_is_seeded_and_shares_resamples():
    data = random_bandit(300, 3, seed=4)
    estimators = make_estimators(EstimatorConfig())
    first = bootstrap_cis(estimators, data, n_boot=100, seed=7)
    assert first == bootstrap_cis(estimators, data, n_boot=100, seed=7)
    assert first != bootstrap_cis(estimators, data, n_boot=100, seed=8)
    assert first["ips"] == bootstrap_ci(ips, data, n_boot=100, seed=7)
    for _, low, high in first.values():
        assert low <= high


def test_estimator_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="clip must be positive"):
        EstimatorConfig(clip=0.0).validate()
    with pytest.raises(ConfigError, match="n_folds"):
        EstimatorConfig(n_folds=0).validate()


# ------------------------------------------------------------------ reward model
def test_ridge_by_hand():
    x, y = np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0])
    w, b = fit_ridge(x, y, l2=0.0)
    assert (w[0], b) == (pytest.approx(2.0), pytest.approx(1.0))
    # centred x = [-1, 0, 1]: w = sum(xc * (y - 3)) / (sum(xc^2) + 1) = 4 / 3; b = 3 - w
    w, b = fit_ridge(x, y, l2=1.0)
    assert (w[0], b) == (pytest.approx(4 / 3), pytest.approx(5 / 3))


def test_logistic_by_hand():
    # x = 0: 1 click in 4; x = 1: 3 clicks in 4. Unpenalised: b = logit(1/4), w = 2 ln 3.
    x = np.array([[0.0]] * 4 + [[1.0]] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=float)
    w, b = fit_logistic(x, y, l2=0.0)
    assert b == pytest.approx(-math.log(3), abs=1e-8)
    assert w[0] == pytest.approx(2 * math.log(3), abs=1e-8)


def test_logistic_reaches_the_penalised_optimum():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 3)) * [1.0, 5.0, 20.0]
    y = (rng.random(500) < 1 / (1 + np.exp(-(x @ [0.5, -0.2, 0.05] - 1)))).astype(float)
    w, b = fit_logistic(x, y, l2=2.0)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    np.testing.assert_allclose(x.T @ (p - y) + 2.0 * w, 0.0, atol=1e-7)
    assert np.sum(p - y) == pytest.approx(0.0, abs=1e-7)


def test_all_action_scores_match_the_design_matrix():
    rng = np.random.default_rng(6)
    features = RewardFeatures(context=rng.random((5, 2)), action_context=rng.random((3, 2)),
                              pair=rng.random((5, 3, 1)))
    weights, intercept = rng.normal(size=5), 0.7
    scores = all_action_scores(features, np.arange(5), weights, intercept, 3)
    for a in range(3):
        x = design_matrix(features, np.arange(5), np.full(5, a))
        np.testing.assert_allclose(scores[:, a], x @ weights + intercept)


def test_cross_fit_predicts_each_fold_from_the_others():
    # No informative feature: each fold's prediction is the other fold's mean reward.
    features = RewardFeatures(context=np.zeros((4, 1)))
    folds = np.array([0, 0, 1, 1])
    q = cross_fit(features, np.zeros(4, dtype=np.int64), np.array([1.0, 1.0, 3.0, 3.0]),
                  n_actions=2, kind="linear", l2=1.0, folds=folds)
    np.testing.assert_allclose(q, [[3, 3], [3, 3], [1, 1], [1, 1]])
    one = cross_fit(features, np.zeros(4, dtype=np.int64), np.array([1.0, 1.0, 3.0, 3.0]),
                    n_actions=2, kind="linear", l2=1.0, folds=np.zeros(4, dtype=np.int64))
    np.testing.assert_allclose(one, 2.0)


def test_cross_fit_fits_one_model_per_group():
    features = RewardFeatures(context=np.zeros((8, 1)))
    groups = np.array([0, 1] * 4)
    reward = np.where(groups == 0, 2.0, 5.0)
    q = cross_fit(features, np.zeros(8, dtype=np.int64), reward, n_actions=1, kind="linear",
                  l2=0.0, folds=fold_ids(8, 2, seed=0), groups=groups)
    np.testing.assert_allclose(q[:, 0], reward)


def test_fold_ids_are_balanced_and_seeded():
    folds = fold_ids(10, 3, seed=0)
    assert sorted(np.bincount(folds)) == [3, 3, 4]
    assert np.array_equal(folds, fold_ids(10, 3, seed=0))
