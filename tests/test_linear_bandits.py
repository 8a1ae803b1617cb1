"""LinUCB and linear Thompson sampling: hand numbers, the model against a direct solve,
regret on a linear bandit with a known answer, and training through the online loop."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from scipy.stats import norm

from liveq.algos.linear_bandits import (
    LinearTSAgent,
    LinearTSConfig,
    LinUCBAgent,
    LinUCBConfig,
    RidgeModel,
    pair_features,
    ucb_scores,
)
from liveq.buffers.replay import ReplayBatch
from liveq.core.config import ConfigError
from liveq.sim.linear_bandit import LINEAR_BANDIT_ID, LinearBanditEnv
from liveq.sim.vector import make_vec_env
from liveq.train import load_run_config
from liveq.train.loop import train
from liveq.train.restore import load_agent

SMALL_WORLD = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2}


# ---------------------------------------------------------------- hand numbers
def test_ucb_score_by_hand():
    # l2 = 1, one observation x = (1, 0) with r = 2:
    #   A = [[2, 0], [0, 1]], b = (2, 0), theta = (1, 0), A^-1 = diag(1/2, 1)
    model = RidgeModel(2, 1.0)
    model.add(np.array([[1.0, 0.0]]), np.array([2.0]))
    queries = np.array([[1.0, 1.0], [0.0, 1.0], [2.0, 0.0]])
    # x^T theta = 1, 0, 2;  x^T A^-1 x = 1.5, 1, 2
    np.testing.assert_allclose(model.mean(queries), [1.0, 0.0, 2.0])
    np.testing.assert_allclose(model.width(queries), np.sqrt([1.5, 1.0, 2.0]))
    np.testing.assert_allclose(ucb_scores(model, queries, 2.0),
                               [1 + 2 * np.sqrt(1.5), 2.0, 2 + 2 * np.sqrt(2.0)])


def test_posterior_update_by_hand():
    # x1 = (1, 0), r1 = 1; x2 = (1, 1), r2 = 3; l2 = 1:
    #   A = I + [[1, 0], [0, 0]] + [[1, 1], [1, 1]] = [[3, 1], [1, 2]], b = (4, 3)
    #   A^-1 = [[2, -1], [-1, 3]] / 5, theta = (8 - 3, -4 + 9) / 5 = (1, 1)
    model = RidgeModel(2, 1.0)
    model.add(np.array([[1.0, 0.0]]), np.array([1.0]))
    model.add(np.array([[1.0, 1.0]]), np.array([3.0]))
    np.testing.assert_allclose(model.A, [[3.0, 1.0], [1.0, 2.0]])
    np.testing.assert_allclose(model.b, [4.0, 3.0])
    np.testing.assert_allclose(model.theta, [1.0, 1.0], atol=1e-12)
    # the draws' covariance v^2 A^-1 = v^2 L^-T L^-1, exactly
    directions = model.draws(np.eye(2), scale=0.5)  # (d, M) columns 0.5 L^-T e_m
    np.testing.assert_allclose(directions @ directions.T,
                               0.25 * np.array([[2.0, -1.0], [-1.0, 3.0]]) / 5, atol=1e-12)


def test_incremental_model_matches_a_direct_solve():
    rng = np.random.default_rng(0)
    model = RidgeModel(6, 0.5)
    xs, rs = [], []
    for _ in range(200):  # batches of 1..8 rows, large and small features
        x = rng.standard_normal((rng.integers(1, 9), 6)) * rng.choice([0.01, 1.0, 30.0])
        r = x @ np.arange(6.0) + rng.standard_normal(len(x))
        model.add(x, r)
        xs.append(x)
        rs.append(r)
    x, r = np.concatenate(xs), np.concatenate(rs)
    a = 0.5 * np.eye(6) + x.T @ x
    np.testing.assert_allclose(model.theta, np.linalg.solve(a, x.T @ r), rtol=1e-9)
    queries = rng.standard_normal((5, 6))
    direct = np.sqrt(np.einsum("nd,de,ne->n", queries, np.linalg.inv(a), queries))
    np.testing.assert_allclose(model.width(queries), direct, rtol=1e-8)
    np.testing.assert_allclose(model.theta, np.arange(6.0), atol=0.05)


def test_pair_features_concatenate_bias_viewer_and_candidate():
    obs = {"viewer": np.array([[2.0, 3.0]]), "candidates": np.array([[[5.0], [7.0]]])}
    np.testing.assert_array_equal(pair_features(obs)[0], [[1, 2, 3, 5], [1, 2, 3, 7]])
    np.testing.assert_array_equal(pair_features(obs, interactions=True)[0],
                                  [[1, 2, 3, 5, 10, 15], [1, 2, 3, 7, 14, 21]])


def two_arm_agent(draws: int) -> tuple[LinearTSAgent, dict]:
    env = LinearBanditEnv(n_arms=2, arm_dim=2, context_dim=1)
    agent = LinearTSAgent(env.observation_space, env.action_space,
                          LinearTSConfig(v=0.7, mc_draws=draws), seed=0)
    obs = {"viewer": np.zeros((1, 1), np.float32), "mask": np.ones((1, 2), np.int8),
           "candidates": np.array([[[1.0, 0.0], [0.0, 1.0]]], np.float32)}
    agent.update(ReplayBatch(obs, np.array([0]), np.array([0.4]), obs, np.zeros(1)))
    return agent, obs


def test_thompson_distribution_matches_the_exact_two_arm_answer():
    # two arms: P(arm 0) = P(s0 > s1) = Phi(mean difference / sd of the difference)
    agent, obs = two_arm_agent(draws=40_000)
    x = pair_features(obs)[0]  # (2, d)
    diff = x[0] - x[1]
    sd = 0.7 * np.sqrt(diff @ np.linalg.solve(agent.model.A, diff))
    exact = norm.cdf(agent.model.mean(diff) / sd)
    probs = agent.behaviour.probabilities(obs)[0]
    assert 0.55 < exact < 0.95  # a case where both arms matter
    np.testing.assert_allclose(probs, [exact, 1 - exact], atol=0.01)


def test_thompson_acts_from_the_distribution_it_reports():
    agent, obs = two_arm_agent(draws=64)
    probs = agent.behaviour.probabilities(obs)[0]
    assert np.all(probs * 64 == np.round(probs * 64))  # resolution 1 / mc_draws
    chosen = agent.act({k: np.repeat(v, 4000, axis=0) for k, v in obs.items()})
    np.testing.assert_array_equal(chosen.propensities, probs[chosen.actions])
    assert abs(np.mean(chosen.actions == 0) - probs[0]) < 0.03


# ---------------------------------------------------------------- regret, known answer
def regrets(agent, steps: int, world_seed: int) -> np.ndarray:
    """Per-step regret of `agent` (uniform when None) on a fixed linear bandit."""
    env = LinearBanditEnv(n_arms=20, noise_sd=1.0, max_steps=steps, world_seed=world_seed)
    obs, _ = env.reset(seed=world_seed)
    rng, out = np.random.default_rng(world_seed), []
    for _ in range(steps):
        batch = {k: v[None] for k, v in obs.items()}
        a = int(rng.integers(20)) if agent is None else int(agent.act(batch).actions[0])
        obs, reward, _, _, info = env.step(a)
        out.append(info["regret"])
        if agent is not None:
            agent.update(ReplayBatch(batch, np.array([a]), np.array([reward]),
                                     {k: v[None] for k, v in obs.items()}, np.zeros(1)))
    return np.array(out)


@pytest.mark.parametrize("world_seed", [0, 1, 2])
@pytest.mark.parametrize("name", ["linucb", "linear_ts"])
def test_regret_grows_sublinearly(name, world_seed):
    env = LinearBanditEnv(n_arms=20)
    agent = (LinUCBAgent(env.observation_space, env.action_space, LinUCBConfig(alpha=2.0), 0)
             if name == "linucb" else
             LinearTSAgent(env.observation_space, env.action_space, LinearTSConfig(v=0.5), 0))
    steps = 2000
    regret = regrets(agent, steps, world_seed)
    uniform = regrets(None, steps, world_seed)
    first, second = regret[: steps // 2].sum(), regret[steps // 2:].sum()
    assert second <= 0.5 * first, (first, second)
    assert regret.sum() < 0.05 * uniform.sum(), (regret.sum(), uniform.sum())


# ---------------------------------------------------------------- env and loop
def test_linear_bandit_env_passes_check_env_and_reports_regret():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(LINEAR_BANDIT_ID).unwrapped
        check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    expected = env.expected_rewards(obs["viewer"])
    best = int(np.argmax(expected))
    assert env.step(best)[4]["regret"] == 0.0
    _, _, _, _, info = env.step((best + 1) % 10)
    assert info["regret"] > 0.0
    with pytest.raises(ConfigError, match="n_arms must be at least 1"):
        LinearBanditEnv(n_arms=0)


def test_slates_and_other_observations_are_refused():
    env = make_vec_env("liveq/LiveStream-v0", 1, {**SMALL_WORLD, "slate_size": 3})
    with pytest.raises(ConfigError, match="linucb recommends one item per step"):
        LinUCBAgent(env.single_observation_space, env.single_action_space, LinUCBConfig(), 0)
    env.close()
    with pytest.raises(ConfigError, match="linear_ts scores candidates from a dict"):
        LinearTSAgent(gym.spaces.Box(0, 1, (4,)), gym.spaces.Discrete(2), LinearTSConfig(), 0)
    with pytest.raises(ConfigError, match="agent.linucb.l2 must be > 0"):
        load_run_config({"agent": {"name": "linucb", "linucb": {"l2": 0.0}}})


def livestream_config(name: str, steps: int) -> object:
    return load_run_config({
        "seed": 4, "env": {"id": "liveq/LiveStream-v0", "n_envs": 8, "kwargs": SMALL_WORLD},
        "agent": {"name": name, name: {"mc_draws": 32} if name == "linear_ts" else {}},
        "train": {"total_env_steps": steps, "eval_every": 0, "eval_episodes": 4,
                  "checkpoint_every": steps // 2, "log_every": 80, "progress": False}})


@pytest.mark.parametrize("name", ["linucb", "linear_ts"])
def test_trains_on_livestream_and_resumes_exactly(name, tmp_path):
    steps = 320
    train(livestream_config(name, steps), tmp_path / "whole")
    half = livestream_config(name, steps // 2)
    train(half, tmp_path / "split")
    train(livestream_config(name, steps), tmp_path / "split", resume=True)
    whole, _ = load_agent(tmp_path / "whole" / "checkpoints" / "latest.pt")
    split, _ = load_agent(tmp_path / "split" / "checkpoints" / "latest.pt")
    assert whole.updates == steps // 8
    np.testing.assert_array_equal(whole.model.A, split.model.A)
    np.testing.assert_array_equal(whole.model.b, split.model.b)
    saved = torch.load(tmp_path / "whole" / "checkpoints" / "latest.pt", weights_only=True)
    assert saved["agent"]["updates"] == steps // 8
