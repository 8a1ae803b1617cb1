"""DQN's switches: dueling heads (identity, masks), n-step and importance-weighted targets
against hand numbers, their config checks, and learning tests on CartPole-v1."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from liveq.algos.dqn import DQNAgent, DQNConfig, td_target
from liveq.buffers.replay import ReplayBatch
from liveq.core.config import ConfigError, from_dict
from liveq.nets.q_networks import CandidateQNetwork, MLPQNetwork, dueling_q, obs_to_tensor
from liveq.train import load_run_config, train

K = 6
DICT_SPACE = gym.spaces.Dict({
    "viewer": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
    "candidates": gym.spaces.Box(-5.0, 5.0, (K, 4), np.float32),
    "mask": gym.spaces.MultiBinary(K),
})
BOX_SPACE = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)


def t(values):
    return torch.tensor(values, dtype=torch.float32)


def candidate_obs(seed=0, n=5):
    rng = np.random.default_rng(seed)
    mask = (rng.random((n, K)) < 0.5).astype(np.int8)
    mask[:, 0] = 1
    mask[-1] = 0  # a row with no valid candidate
    return {"viewer": rng.standard_normal((n, 3)).astype(np.float32),
            "candidates": rng.standard_normal((n, K, 4)).astype(np.float32), "mask": mask}


# --- dueling ----------------------------------------------------------------------------

def test_dueling_q_by_hand():
    value, advantages = t([1.0, 0.0]), t([[1.0, 2.0, 6.0], [3.0, 5.0, 100.0]])
    # row 0: mean over all three = 3 -> 1 + [-2, -1, 3]
    assert dueling_q(value, advantages).tolist()[0] == [-1.0, 0.0, 4.0]
    # row 1, last entry masked: mean over [3, 5] = 4 -> [-1, 1, 96]
    mask = torch.tensor([[True, True, True], [True, True, False]])
    assert dueling_q(value, advantages, mask).tolist()[1] == [-1.0, 1.0, 96.0]


def test_dueling_candidate_network_identity_and_masked_mean():
    torch.manual_seed(0)
    net = CandidateQNetwork(3, 4, [16, 8], dueling=True)
    obs = obs_to_tensor(candidate_obs())
    with torch.no_grad():
        q = net(obs)  # (5, K)
        code = net.viewer_encoder(obs["viewer"])
        value = net.value(code).squeeze(1)
        advantages = net.candidate_scores(code, obs["candidates"])
    mask = obs["mask"].float()
    mean = (advantages * mask).sum(1) / mask.sum(1).clamp(min=1)
    torch.testing.assert_close(q, value[:, None] + advantages - mean[:, None])
    # the advantages Q - V average to zero over the valid candidates of every row
    valid_rows = mask.sum(1) > 0
    centred = ((q - value[:, None]) * mask).sum(1)[valid_rows] / mask.sum(1)[valid_rows]
    torch.testing.assert_close(centred, torch.zeros_like(centred), atol=1e-5, rtol=0)
    # a row with no valid candidate: nothing subtracted, no NaN
    torch.testing.assert_close(q[-1], value[-1] + advantages[-1])


def test_dueling_ignores_what_masked_candidates_look_like():
    torch.manual_seed(1)
    net = CandidateQNetwork(3, 4, [16], dueling=True)
    raw = candidate_obs(seed=2)
    changed = {key: value.copy() for key, value in raw.items()}
    masked = changed["mask"] == 0
    changed["candidates"][masked] = 50.0  # invalid candidates with extreme features
    with torch.no_grad():
        before, after = net(obs_to_tensor(raw)), net(obs_to_tensor(changed))
    valid = torch.as_tensor(~masked)
    torch.testing.assert_close(before[valid], after[valid])
    # without the mask the mean runs over every candidate, so the same change shows
    del raw["mask"], changed["mask"]
    with torch.no_grad():
        assert not torch.allclose(net(obs_to_tensor(raw))[valid],
                                  net(obs_to_tensor(changed))[valid])


def test_dueling_mlp_is_value_plus_centred_advantage():
    torch.manual_seed(0)
    net = MLPQNetwork(4, 3, [16, 8], dueling=True)
    obs = torch.randn(7, 4)
    with torch.no_grad():
        q = net(obs)
        features = torch.relu(net.trunk(obs))
        value, advantages = net.value(features), net.advantage(features)
    torch.testing.assert_close(q, value + advantages - advantages.mean(1, keepdim=True))
    torch.testing.assert_close((q - value).mean(1), torch.zeros(7), atol=1e-6, rtol=0)


def test_dueling_switch_builds_the_value_head_only_when_on():
    plain = DQNAgent(DICT_SPACE, gym.spaces.Discrete(K), DQNConfig(hidden_sizes=[8]), seed=0)
    dueling = DQNAgent(DICT_SPACE, gym.spaces.Discrete(K),
                       DQNConfig(hidden_sizes=[8], dueling=True), seed=0)
    assert not any(key.startswith("value") for key in plain.q_net.state_dict())
    assert any(key.startswith("value") for key in dueling.q_net.state_dict())
    box = DQNAgent(BOX_SPACE, gym.spaces.Discrete(2), DQNConfig(hidden_sizes=[8, 8],
                   dueling=True), seed=0)
    assert box.q_net(torch.zeros(1, 4)).shape == (1, 2)


# --- n-step and importance-weighted targets ---------------------------------------------

def test_td_target_with_n_step_discounts_by_hand():
    # returns 3 and 4; discounts 0.125 (3 steps, gamma 0.5) and 0 (terminated);
    # next values max(1, 5) = 5 and 2: 3 + 0.125 * 5 = 3.625 ; 4
    target = td_target(t([3.0, 4.0]), t([0.0, 1.0]), 0.5, t([[1.0, 5.0], [2.0, 0.0]]),
                       discounts=t([0.125, 0.0]))
    assert target.tolist() == pytest.approx([3.625, 4.0])


def linear_agent(**overrides) -> DQNAgent:
    """A 1-action agent with Q(s) = relu(s0 + s1 + s2 + s3), online and target alike."""
    agent = DQNAgent(BOX_SPACE, gym.spaces.Discrete(1), DQNConfig(
        hidden_sizes=[1], gamma=0.5, double=False, **overrides), seed=0)
    with torch.no_grad():
        for net in (agent.q_net, agent.target_net):
            for layer in (net.net[0], net.net[2]):
                layer.weight.fill_(1.0), layer.bias.fill_(0.0)
    return agent


def two_transitions(**extra) -> ReplayBatch:
    obs = np.array([[1.0, 1.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0]], np.float32)  # Q = 2, 0.5
    next_obs = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], np.float32)  # Q' = 1
    return ReplayBatch(obs, np.array([0, 0]), np.array([0.25, 0.0], np.float32), next_obs,
                       np.zeros(2, np.float32), **extra)


def test_n_step_update_uses_the_batch_discounts():
    # y = r + discount * 1 = [0.25 + 0.25, 0 + 0] ; errors 2 - 0.5 = 1.5, 0.5 - 0 = 0.5
    agent = linear_agent(n_step=2)
    agent.update(two_transitions(discounts=np.array([0.25, 0.0], np.float32)))
    np.testing.assert_allclose(agent.td_errors, [1.5, 0.5])


def test_importance_weights_scale_each_transitions_loss():
    # y = r + 0.5 * 1 = [0.75, 0.5]; errors 1.25 and 0 -> huber 0.75 and 0;
    # weights [0.5, 1]: mean(0.5 * 0.75, 0) = 0.1875 ; unweighted mean 0.375
    weighted = linear_agent(prioritized=True).update(
        two_transitions(weights=np.array([0.5, 1.0], np.float32)))
    assert weighted["loss"] == pytest.approx(0.1875)
    assert linear_agent().update(two_transitions())["loss"] == pytest.approx(0.375)


def test_switches_refuse_batches_that_would_ignore_them():
    with pytest.raises(ConfigError, match="n_step = 3 needs n-step batches"):
        linear_agent(n_step=3).update(two_transitions())
    with pytest.raises(ConfigError, match="prioritized = true needs batches"):
        linear_agent(prioritized=True).update(two_transitions())


@pytest.mark.parametrize(("key", "value", "message"), [
    ("n_step", 0, "n_step must be at least 1"),
    ("priority_alpha", 1.5, "priority_alpha must be in"),
    ("priority_beta_start", -0.1, "priority_beta_start must be in"),
    ("priority_beta_end", 2.0, "priority_beta_end must be in"),
    ("priority_eps", 0.0, "priority_eps must be positive"),
])
def test_config_rejects_bad_switch_values(key, value, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(DQNConfig, {key: value})


def test_replay_schedule_carries_the_switches():
    off = DQNConfig().replay_schedule()
    assert off.n_step == 1 and off.priorities is None
    on = DQNConfig(gamma=0.9, n_step=3, prioritized=True, priority_alpha=0.5).replay_schedule()
    assert (on.n_step, on.gamma, on.priorities.alpha) == (3, 0.9, 0.5)
    assert (on.priorities.beta_start, on.priorities.beta_end) == (0.4, 1.0)


# --- learning: the switches still solve CartPole -----------------------------------------

def cartpole_config(**switches):
    return load_run_config({
        "seed": 0,
        "env": {"id": "CartPole-v1", "n_envs": 4},
        "agent": {"dqn": {"hidden_sizes": [64, 64], "learning_starts": 500,
                          "target_update_interval": 250, "epsilon_fraction": 0.3,
                          "buffer_size": 20_000, **switches}},
        "train": {"total_env_steps": 10_000, "eval_every": 0, "eval_episodes": 20,
                  "checkpoint_every": 0, "log_every": 1_000, "progress": False},
    })


@pytest.mark.slow
@pytest.mark.parametrize("switches", [
    {"n_step": 3}, {"dueling": True}, {"prioritized": True},
    {"n_step": 3, "dueling": True, "prioritized": True},
], ids=["n_step_3", "dueling", "prioritized", "all_three"])
def test_dqn_variants_solve_cartpole_far_above_random(tmp_path, switches):
    # a uniformly random policy lasts about 22 steps; plain DQN reaches 200-240 here
    summary = train(cartpole_config(**switches), tmp_path)
    print(f"CartPole {switches}: greedy return {summary['final_eval']['return']:.1f}")
    assert summary["final_eval"]["return"] > 100
