import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from liveq.core.errors import ConfigError, InvalidActionError
from liveq.sim.chain import CHAIN_ID, LEFT, RIGHT, ChainEnv, chain_optimal_q, register_chain


@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("slip", [0.0, 0.3])
def test_check_env_passes_with_warnings_as_errors(one_hot, slip):
    register_chain()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(CHAIN_ID, one_hot=one_hot, slip=slip)
        check_env(env.unwrapped)


def test_register_chain_twice_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_chain()
        register_chain()
    assert isinstance(gym.make(CHAIN_ID, n_states=4).unwrapped, ChainEnv)


def _trajectory(seed: int, n_steps: int = 50) -> list[tuple]:
    env = ChainEnv(n_states=4, slip=0.3, max_steps=10)
    actions = np.random.default_rng(123).integers(0, 2, n_steps)
    obs, _ = env.reset(seed=seed)
    steps = [(int(obs),)]
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(int(action))
        steps.append((int(obs), reward, terminated, truncated))
        if truncated:
            obs, _ = env.reset()
    return steps


def test_same_seed_same_trajectory():
    assert _trajectory(seed=7) == _trajectory(seed=7)
    assert _trajectory(seed=7) != _trajectory(seed=8)


def test_deterministic_moves_rewards_and_truncation():
    env = ChainEnv(n_states=3, max_steps=5)
    obs, info = env.reset(seed=0)
    assert obs == 0 and info == {"state": 0}
    # left at the start: small reward, stay; right twice reaches the end; right there pays 1.
    moves = [LEFT, RIGHT, RIGHT, RIGHT, LEFT]
    expected = [(0, 0.1), (1, 0.0), (2, 0.0), (2, 1.0), (1, 0.0)]
    for i, (move, (state, reward)) in enumerate(zip(moves, expected, strict=True)):
        obs, r, terminated, truncated, _ = env.step(move)
        assert (obs, r, terminated) == (state, reward, False)
        assert truncated == (i == 4)


def test_full_slip_reverses_every_move():
    env = ChainEnv(n_states=3, slip=1.0)
    env.reset(seed=0)
    obs, reward, *_ = env.step(LEFT)
    assert (obs, reward) == (1, 0.0)


def test_one_hot_observation():
    env = ChainEnv(n_states=4, one_hot=True)
    obs, _ = env.reset(seed=0)
    obs, *_ , info = env.step(RIGHT)
    np.testing.assert_array_equal(obs, np.array([0, 1, 0, 0], dtype=np.float32))
    assert obs.dtype == np.float32 and info["state"] == 1


@pytest.mark.parametrize("kwargs", [{"n_states": 1}, {"slip": 1.5}, {"max_steps": 0}])
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        ChainEnv(**kwargs)


@pytest.mark.parametrize("action", [2, -1, 1.5, 1.0, True, np.nan, "1"])
def test_rejects_bad_action(action):
    env = ChainEnv()
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="action must be 0"):
        env.step(action)


def test_optimal_q_n3_by_hand():
    # n=3, gamma=0.9, deterministic. Always moving right is optimal, so
    #   V(2) = 1 / (1 - 0.9) = 10           Q(2,R) = 1 + 0.9*10   = 10
    #   V(1) = Q(1,R) = 0.9*V(2) = 9        Q(2,L) = 0.9*V(1)     = 8.1
    #   V(0) = Q(0,R) = 0.9*V(1) = 8.1      Q(1,L) = 0.9*V(0)     = 7.29
    #                                       Q(0,L) = 0.1 + 0.9*8.1 = 7.39
    expected = np.array([[7.39, 8.1], [7.29, 9.0], [8.1, 10.0]])
    np.testing.assert_allclose(chain_optimal_q(3, 0.9), expected, atol=1e-9)


def test_optimal_q_gamma_zero_is_immediate_reward():
    expected = np.array([[0.1, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(chain_optimal_q(4, 0.0), expected)


def test_optimal_q_half_slip_by_hand():
    # n=2, gamma=0.5, slip=0.5: both actions are the same coin flip, so Q(s,L) = Q(s,R) = V(s):
    #   V0 = 0.5*(0.1 + 0.5 V0) + 0.5*(0.5 V1)  ->  0.75 V0 - 0.25 V1 = 0.05
    #   V1 = 0.5*(0.5 V0) + 0.5*(1 + 0.5 V1)    -> -0.25 V0 + 0.75 V1 = 0.5
    #   3*(first) + second: 2 V0 = 0.65 -> V0 = 0.325; V1 = (0.5 + 0.25*0.325)/0.75 = 0.775
    expected = np.array([[0.325, 0.325], [0.775, 0.775]])
    np.testing.assert_allclose(chain_optimal_q(2, 0.5, slip=0.5), expected, atol=1e-9)


def test_optimal_q_full_slip_swaps_actions():
    np.testing.assert_allclose(chain_optimal_q(5, 0.8, slip=1.0),
                               chain_optimal_q(5, 0.8)[:, ::-1], atol=1e-9)


def test_optimal_q_rejects_gamma_one():
    with pytest.raises(ValueError, match="gamma"):
        chain_optimal_q(3, 1.0)
