"""DQN's robustness switches: the moving average of weights behind the greedy policy, and
the Q-network split into an immediate-reward head and a future-value head."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from liveq.algos.dqn import DQNAgent, DQNConfig, taken_q, td_target
from liveq.buffers.replay import ReplayBatch
from liveq.core.config import ConfigError, from_dict
from liveq.core.errors import CheckpointError
from liveq.nets.averaged import WeightAverage
from liveq.nets.decomposed import RewardFutureQNetwork
from liveq.nets.q_networks import obs_to_tensor

BOX_SPACE = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)


def batch(seed=0, n=8) -> ReplayBatch:
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    next_obs = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    return ReplayBatch(obs, rng.integers(0, 3, n), rng.uniform(0, 2, n).astype(np.float32),
                       next_obs, np.zeros(n, np.float32))


def agent(**overrides) -> DQNAgent:
    return DQNAgent(BOX_SPACE, gym.spaces.Discrete(3),
                    DQNConfig(hidden_sizes=[8], gamma=0.9, **overrides), seed=0)


def test_weight_average_by_hand():
    online = torch.nn.Linear(1, 1)
    with torch.no_grad():
        online.weight.fill_(4.0), online.bias.fill_(0.0)
    average = WeightAverage(online, decay=0.75)
    with torch.no_grad():
        online.weight.fill_(8.0), online.bias.fill_(-4.0)
    average.update(online)  # 0.75 * 4 + 0.25 * 8 = 5 ; 0.75 * 0 + 0.25 * -4 = -1
    assert average.module.weight.item() == 5.0 and average.module.bias.item() == -1.0
    assert not average.module.weight.requires_grad
    with pytest.raises(ValueError, match="decay must be in"):
        WeightAverage(online, decay=1.0)


def test_greedy_policy_serves_the_average_and_behaviour_the_online_weights():
    learner = agent(policy_average=0.5)
    before = [p.detach().clone() for p in learner.q_net.parameters()]
    learner.update(batch())
    served = learner.greedy_policy().q_net
    assert served is learner.average.module and learner.behaviour.base.q_net is learner.q_net
    for old, new, avg in zip(before, learner.q_net.parameters(), served.parameters(),
                             strict=True):
        torch.testing.assert_close(avg, 0.5 * old + 0.5 * new.detach())
    plain = agent()
    assert plain.average is None and plain.greedy_policy().q_net is plain.q_net


def test_average_round_trips_through_the_checkpoint():
    trained = agent(policy_average=0.9)
    for seed in range(3):
        trained.update(batch(seed))
    restored = agent(policy_average=0.9)
    restored.load_state_dict(trained.state_dict())
    obs = batch(5).obs
    np.testing.assert_array_equal(restored.greedy_policy().scores(obs),
                                  trained.greedy_policy().scores(obs))
    with pytest.raises(CheckpointError, match="no averaged weights"):
        restored.load_state_dict(agent().state_dict())


def test_reward_head_network_is_the_sum_of_its_parts():
    learner = agent(reward_head=True)
    net = learner.q_net
    assert isinstance(net, RewardFutureQNetwork)
    obs = obs_to_tensor(batch().obs)
    with torch.no_grad():
        torch.testing.assert_close(net(obs), net.reward(obs) + net.future(obs))


def test_reward_head_loss_adds_the_immediate_reward_regression():
    learner = agent(reward_head=True, double=False)
    b = batch()
    obs, next_obs = obs_to_tensor(b.obs), obs_to_tensor(b.next_obs)
    actions, rewards = torch.as_tensor(b.actions), torch.as_tensor(b.rewards)
    with torch.no_grad():
        target = td_target(rewards, torch.zeros(8), 0.9, learner.target_net(next_obs))
        q = taken_q(learner.q_net(obs), actions)
        r = taken_q(learner.q_net.reward(obs), actions)
    huber = torch.nn.functional.smooth_l1_loss
    expected = huber(q, target) + huber(r, rewards)
    assert learner.update(b)["loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_reward_head_learns_the_immediate_reward():
    learner = agent(reward_head=True, lr=0.01)
    b = batch(n=64)
    obs, actions = obs_to_tensor(b.obs), torch.as_tensor(b.actions)

    def reward_error():
        with torch.no_grad():
            r = taken_q(learner.q_net.reward(obs), actions)
        return (r - torch.as_tensor(b.rewards)).abs().mean().item()

    start = reward_error()
    for _ in range(300):
        learner.update(b)
    assert reward_error() < 0.5 * start


def test_config_rejects_a_bad_average():
    with pytest.raises(ConfigError, match="policy_average must be in"):
        from_dict(DQNConfig, {"policy_average": 1.0})
