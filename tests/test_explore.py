"""Exploration wrappers and the schedule, against probabilities worked out by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from liveq.core.errors import UsageError
from liveq.policies.base import GreedyPolicy, top_k_slate
from liveq.policies.baselines import RandomPolicy
from liveq.policies.explore import (
    EpsilonGreedy,
    Softmax,
    linear_schedule,
    plackett_luce_marginals,
)


class FixedScores(GreedyPolicy):
    """Scores given as a table `(n_envs, K)`; the observation is only the mask dict."""

    def __init__(self, table, slate_size: int = 1):
        self.table, self.slate_size = np.asarray(table, dtype=np.float64), slate_size

    def allowed(self, obs, mask=None):
        return np.asarray(obs["mask"] if mask is None else mask, dtype=bool)

    def scores(self, obs, mask=None):
        return np.where(self.allowed(obs, mask), self.table, -np.inf)


def obs_of(mask) -> dict:
    return {"mask": np.asarray(mask, dtype=bool)}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- schedule
def test_linear_schedule_by_hand():
    # DQN: 1.0 -> 0.05 over 0.1 * 1000 = 100 steps; step 50: 1 + (0.05 - 1) * 0.5 = 0.525
    assert linear_schedule(50, 1.0, 0.05, 0.1 * 1000) == pytest.approx(0.525)
    # tabular: 1.0 -> 0.1 over 10 steps; step 4: 1 + (0.1 - 1) * 0.4 = 0.64
    assert linear_schedule(4, 1.0, 0.1, 10) == pytest.approx(0.64)
    assert linear_schedule(0, 1.0, 0.1, 10) == 1.0
    assert linear_schedule(10, 1.0, 0.1, 10) == 0.1  # exactly the end, not 1 + (0.1 - 1)
    assert linear_schedule(99, 1.0, 0.1, 10) == 0.1
    assert linear_schedule(0, 1.0, 0.1, 0) == 0.1


# ---------------------------------------------------------------- epsilon-greedy
def test_epsilon_greedy_single_item_by_hand():
    # greedy = 2 in rows 0 and 1 (4 allowed), row 2 allows only candidate 0
    mask = [[1, 1, 1, 1], [1, 1, 1, 1], [1, 0, 0, 0]]
    policy = EpsilonGreedy(FixedScores([[0, 1, 5, 2], [0, 1, 5, 2], [3, 0, 0, 0]]), 0.2, rng())
    # greedy: 1 - 0.2 + 0.2/4 = 0.85 ; any other allowed: 0.2/4 = 0.05 ; alone: 1
    np.testing.assert_allclose(policy.slate_probability(obs_of(mask), np.array([2, 1, 0])),
                               [0.85, 0.05, 1.0])
    np.testing.assert_allclose(policy.probabilities(obs_of(mask)),
                               [[0.05, 0.05, 0.85, 0.05], [0.05, 0.05, 0.85, 0.05],
                                [1.0, 0.0, 0.0, 0.0]])


def test_epsilon_greedy_slates_by_hand():
    # 4 allowed, slates of 2: 4 * 3 = 12 ordered slates, each 1/12 under uniform
    mask = [[1, 1, 1, 1, 0]]
    policy = EpsilonGreedy(FixedScores([[0, 1, 5, 2, 9]], slate_size=2), 0.2, rng())
    obs = obs_of(mask)
    greedy = policy.base.act(obs).actions
    np.testing.assert_array_equal(greedy, [[2, 3]])
    # the greedy slate: 0.8 + 0.2/12 ; another valid slate: 0.2/12 ; repeats or masked: 0
    for slate, expected in (([2, 3], 0.8 + 0.2 / 12), ([3, 2], 0.2 / 12),
                            ([0, 1], 0.2 / 12), ([2, 2], 0.0), ([4, 2], 0.0)):
        assert policy.slate_probability(obs, np.array([slate]))[0] == pytest.approx(expected)
    marginals = policy.probabilities(obs)  # (1, 2, 5)
    # rank 0: candidate 2 has 0.8 + 0.2/4, the other allowed 0.2/4 ; rank 1 the same for 3
    np.testing.assert_allclose(marginals[0], [[0.05, 0.05, 0.85, 0.05, 0.0],
                                              [0.05, 0.05, 0.05, 0.85, 0.0]])


def test_too_few_allowed_for_the_slate_fill_with_masked_in_index_order():
    # one allowed candidate (3), slates of 3: the fill is the masked 0 then 1
    mask = np.array([[0, 0, 0, 1, 0], [0, 0, 0, 0, 0]], dtype=bool)
    policy = EpsilonGreedy(FixedScores(np.ones((2, 5)), slate_size=3), 0.5, rng())
    action = policy.act(obs_of(mask))
    np.testing.assert_array_equal(action.actions, [[3, 0, 1], [0, 1, 2]])
    np.testing.assert_array_equal(action.propensities, [1.0, 1.0])
    marginals = policy.probabilities(obs_of(mask))
    assert marginals[0, 0, 3] == 1.0 and marginals.sum() == 1.0  # filled ranks: all 0
    assert policy.slate_probability(obs_of(mask), np.array([[3, 1, 0], [0, 1, 2]]))[0] == 0.0


def test_epsilon_is_set_from_outside_and_checked():
    policy = EpsilonGreedy(FixedScores([[0.0, 1.0]]), 0.0, rng())
    obs = obs_of([[1, 1]])
    assert policy.act(obs).propensities[0] == 1.0
    policy.epsilon = 1.0
    assert policy.act(obs).propensities[0] == 0.5
    with pytest.raises(UsageError, match="epsilon must be in"):
        policy.epsilon = 1.5


def test_epsilon_greedy_around_a_random_policy_mixes_exactly():
    mask = np.ones((2, 4), dtype=bool)
    obs = {"mask": mask, "candidates": np.zeros((2, 4, 1))}
    policy = EpsilonGreedy(RandomPolicy(2, seed=1), 0.3, rng())
    action = policy.act(obs)
    np.testing.assert_allclose(action.propensities, [1 / 12, 1 / 12])
    np.testing.assert_allclose(policy.probabilities(obs), 0.25)


# ---------------------------------------------------------------- softmax
def test_softmax_single_item_by_hand():
    # weights exp(score / T) = 1, 2, 3 (T = 1): probabilities 1/6, 2/6, 3/6
    scores = np.log([[1.0, 2.0, 3.0, 7.0]])
    policy = Softmax(FixedScores(scores), 1.0, rng())
    obs = obs_of([[1, 1, 1, 0]])
    np.testing.assert_allclose(policy.probabilities(obs), [[1 / 6, 2 / 6, 3 / 6, 0.0]])
    np.testing.assert_allclose(policy.slate_probability(obs, np.array([2])), [0.5])
    # T = 2 halves the log-weights: 1, sqrt 2, sqrt 3 over their sum
    policy.temperature = 2.0
    root = np.sqrt([1.0, 2.0, 3.0])
    np.testing.assert_allclose(policy.probabilities(obs)[0, :3], root / root.sum())


def test_softmax_slates_are_plackett_luce_by_hand():
    scores = np.log([[1.0, 2.0, 3.0]])
    policy = Softmax(FixedScores(scores, slate_size=2), 1.0, rng())
    obs = obs_of([[1, 1, 1]])
    # P([2, 1]) = 3/6 * 2/(1 + 2) = 1/3 ; P([0, 2]) = 1/6 * 3/5 = 0.1
    np.testing.assert_allclose(policy.slate_probability(obs, np.array([[2, 1]])), [1 / 3])
    np.testing.assert_allclose(policy.slate_probability(obs, np.array([[0, 2]])), [0.1])
    # candidate 0 at rank 1: 2/6 * 1/4 + 3/6 * 1/3 = 1/4
    marginals = policy.probabilities(obs)
    assert marginals[0, 1, 0] == pytest.approx(0.25)
    np.testing.assert_allclose(marginals.sum(axis=2), 1.0)


def test_plackett_luce_marginals_match_enumerated_slates():
    generator = rng(7)
    scores = generator.normal(size=(3, 5))
    mask = np.array([[1, 1, 1, 1, 1], [1, 0, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=bool)
    policy = Softmax(FixedScores(scores, slate_size=3), 0.7, rng())
    obs = obs_of(mask)
    marginals = policy.probabilities(obs)
    expected = np.zeros_like(marginals)
    total = np.zeros(3)
    for slate in itertools.permutations(range(5), 3):
        prob = policy.slate_probability(obs, np.tile(slate, (3, 1)))
        total += prob
        for rank, k in enumerate(slate):
            expected[:, rank, k] += prob * mask[:, k]
    np.testing.assert_allclose(total, 1.0)
    np.testing.assert_allclose(marginals, expected, atol=1e-12)


def test_softmax_sampling_follows_its_probabilities():
    scores = np.log([[1.0, 2.0, 3.0, 4.0]])
    policy = Softmax(FixedScores(np.repeat(scores, 20_000, axis=0)), 1.0, rng(3))
    chosen = policy.act(obs_of(np.ones((20_000, 4)))).actions
    np.testing.assert_allclose(np.bincount(chosen) / 20_000, [0.1, 0.2, 0.3, 0.4], atol=0.01)


def test_softmax_refuses_what_it_cannot_do():
    with pytest.raises(UsageError, match="needs a policy with scores"):
        Softmax(RandomPolicy(1), 1.0, rng())
    with pytest.raises(UsageError, match="temperature must be a positive number"):
        Softmax(FixedScores([[0.0]]), 0.0, rng())
    with pytest.raises(UsageError, match="use slate_probability"):
        plackett_luce_marginals(np.zeros((1, 60)), 5)


def test_gumbel_keys_rank_like_top_k_at_zero_noise():
    # the sampling keys are log-weights plus noise: with huge score gaps the draw is the
    # deterministic top-k, so sampling and top_k_slate agree on tie-free scores
    scores = np.array([[0.0, 300.0, 100.0, 200.0]])
    policy = Softmax(FixedScores(scores, slate_size=3), 1.0, rng())
    np.testing.assert_array_equal(policy.act(obs_of(np.ones((1, 4)))).actions,
                                  top_k_slate(scores, 3).actions)
