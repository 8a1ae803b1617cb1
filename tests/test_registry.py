"""The algorithm registry: every entry builds, learns, saves and parses through a run config."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import yaml

from liveq.algos.dqn import DQNConfig
from liveq.buffers.replay import ReplayBatch
from liveq.buffers.rollout import Rollout
from liveq.core.config import ConfigError
from liveq.train import ALGORITHMS, algorithm, build_learner, derive_config, load_run_config
from liveq.train.config import run_config_dict
from liveq.train.loop import train

K = 4
CANDIDATES = gym.spaces.Dict({
    "viewer": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
    "candidates": gym.spaces.Box(-1.0, 1.0, (K, 2), np.float32),
    "mask": gym.spaces.MultiBinary(K),
})


def spaces_and_batch(name: str, rng: np.random.Generator):
    """Spaces the learner fits and a batch of 8 transitions for them."""
    if name == "tabular_q":
        obs, next_obs = rng.integers(0, 5, 8), rng.integers(0, 5, 8)
        return gym.spaces.Discrete(5), gym.spaces.Discrete(2), ReplayBatch(
            obs, rng.integers(0, 2, 8), rng.random(8), next_obs, np.zeros(8, np.float32))

    def obs():
        return {"viewer": rng.standard_normal((8, 3)).astype(np.float32),
                "candidates": rng.standard_normal((8, K, 2)).astype(np.float32),
                "mask": np.ones((8, K), np.int8)}

    if algorithm(name).loop == "on_policy":  # learns from rollouts with advantages
        return CANDIDATES, gym.spaces.Discrete(K), Rollout(
            obs(), rng.integers(0, K, 8), rng.standard_normal(8), rng.standard_normal(8),
            np.zeros(8))
    if name == "slateq":  # ranks slates of 2 and learns from the opened rank (-1 = none)
        slates = np.argsort(rng.random((8, K)), axis=1)[:, :2]
        return CANDIDATES, gym.spaces.MultiDiscrete([K, K]), ReplayBatch(
            obs(), slates, rng.random(8).astype(np.float32),
            {**obs(), "clicked_rank": rng.integers(-1, 2, 8)}, np.zeros(8, np.float32))
    return CANDIDATES, gym.spaces.Discrete(K), ReplayBatch(
        obs(), rng.integers(0, K, 8), rng.random(8).astype(np.float32), obs(),
        np.zeros(8, np.float32))


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_learner_updates_saves_and_acts_greedily(name):
    obs_space, action_space, batch = spaces_and_batch(name, np.random.default_rng(0))
    spec = algorithm(name)
    learner = build_learner(name, obs_space, action_space, spec.config(), seed=0)
    stats = learner.update(batch)
    assert stats and all(isinstance(v, float) and math.isfinite(v) for v in stats.values())
    assert learner.updates == (spec.config().n_epochs * spec.config().n_minibatches
                               if spec.loop == "on_policy" else 1)
    twin = build_learner(name, obs_space, action_space, spec.config(), seed=1)
    twin.load_state_dict(learner.state_dict())
    np.testing.assert_array_equal(twin.greedy_policy().act(batch.obs).actions,
                                  learner.greedy_policy().act(batch.obs).actions)
    if spec.loop == "off_policy":
        assert learner.replay_schedule.batch_size == spec.config().batch_size
    if spec.loop is not None:
        epsilon = learner.set_progress(0, 100)  # NaN: an on-policy learner has none
        assert 0.0 <= epsilon <= 1.0 or (spec.loop == "on_policy" and math.isnan(epsilon))
        assert learner.act(batch.obs).actions.shape == batch.actions.shape


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_frozen_greedy_policy_ignores_later_updates(name):
    obs_space, action_space, batch = spaces_and_batch(name, np.random.default_rng(1))
    learner = build_learner(name, obs_space, action_space, algorithm(name).config(), seed=0)
    live, frozen = learner.greedy_policy(), learner.greedy_policy(frozen=True)
    before = frozen.scores(batch.obs)
    for _ in range(3):
        learner.update(batch)
    np.testing.assert_array_equal(frozen.scores(batch.obs), before)
    assert not np.array_equal(live.scores(batch.obs), before)


def test_registry_entries():
    assert list(ALGORITHMS) == ["dqn", "myopic", "cql", "bandit", "bc", "reinforce",
                               "tabular_q", "linucb", "linear_ts", "ppo", "a2c", "slateq"]
    assert algorithm("ppo").loop == "on_policy" and not algorithm("ppo").offline
    assert algorithm("tabular_q").loop == "online" and not algorithm("tabular_q").offline
    assert algorithm("bc").loop is None and algorithm("bc").offline
    assert all(a.doc and a.name == n for n, a in ALGORITHMS.items())
    with pytest.raises(ConfigError, match=r"unknown agent 'sac', expected one of \['dqn'"):
        algorithm("sac")


@pytest.mark.parametrize(("agent", "message"), [
    ({"name": "sac"}, r"agent.name: unknown agent 'sac', expected one of \['dqn', 'myopic'"),
    ({"name": "cql", "cql": {"lrr": 0.1}}, "unknown config key 'agent.cql.lrr'"),
    ({"name": "cql", "cql": {"cql_alpha": 0.0}}, "agent.cql.cql_alpha must be > 0"),
    ({"name": "tabular_q", "tabular_q": {"alpha": 2.0}}, r"agent.tabular_q.alpha must be in"),
    ({"name": "myopic", "myopic": {"gamma": 0.9}}, "agent.myopic.gamma must be 0"),
    ({"name": "myopic", "dqn": {"lr": 0.1}}, "agent.dqn: a section for agent 'dqn' but name "
                                             "is 'myopic'"),
    ({"dqn": {"cql_alpha": 0.5}}, "agent.dqn.cql_alpha: dqn has no cql_alpha any more; use "
                                  "agent name cql"),
    ({"name": "myopic", "myopic": {"cql_alpha": 0.1}}, "agent.myopic.cql_alpha: myopic has "
                                                       "no cql_alpha any more"),
    ({"dqn": {"td_weight": 0.0}}, "agent.dqn.td_weight: dqn has no td_weight any more; use "
                                  "agent name bc"),
])
def test_agent_sections_are_validated_with_full_paths(agent, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config({"agent": agent})


def test_runs_saved_before_cql_and_bc_became_learners_still_load():
    # config.yaml of such a run holds every DQN default, the retired ones included
    old = {"agent": {"name": "dqn", "dqn": {"lr": 0.01, "cql_alpha": 0.0, "td_weight": 1.0}}}
    config = load_run_config(old)
    assert config == load_run_config({"agent": {"dqn": {"lr": 0.01}}})
    assert "cql_alpha" in old["agent"]["dqn"]  # the caller's dict is left alone


def test_named_section_takes_its_defaults_and_round_trips():
    config = load_run_config({"agent": {"name": "bandit", "bandit": {"cql_alpha": 0.5}}})
    assert config.agent.settings.gamma == 0.0 and config.agent.settings.cql_alpha == 0.5
    saved = run_config_dict(config)
    assert list(saved["agent"]) == ["name", "bandit"]  # config.yaml shows only the one in use
    assert load_run_config(yaml.safe_load(yaml.safe_dump(saved))) == config
    assert load_run_config({"agent": {"name": "myopic"}}).agent.settings.gamma == 0.0


def test_derive_config_shares_settings_and_pins_gamma():
    dqn = DQNConfig(gamma=0.95, lr=0.01, hidden_sizes=[8], batch_size=16)
    myopic = derive_config("myopic", dqn)
    assert (myopic.gamma, myopic.lr, myopic.hidden_sizes, myopic.batch_size) == (
        0.0, 0.01, [8], 16)
    cql = derive_config("cql", dqn, cql_alpha=2.0)
    assert (cql.gamma, cql.cql_alpha, cql.lr) == (0.95, 2.0, 0.01)
    assert derive_config("tabular_q", dqn).gamma == 0.95  # shared by name, nothing else


def test_bc_cannot_train_by_acting(tmp_path):
    config = load_run_config({"env": {"id": "CartPole-v1", "n_envs": 1},
                              "agent": {"name": "bc"}})
    with pytest.raises(ConfigError, match="bc learns only from a logged buffer"):
        train(config, tmp_path)
