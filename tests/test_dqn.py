"""DQN: the math against hand numbers, masking, spaces, seeding and state."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from liveq.algos.dqn import DQNAgent, DQNConfig, MyopicConfig, td_target
from liveq.buffers.replay import ReplayBatch
from liveq.core.config import ConfigError, from_dict
from liveq.core.errors import CheckpointError
from liveq.policies.base import masked_uniform, top_k_slate

K = 5
DICT_SPACE = gym.spaces.Dict({
    "viewer": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
    "candidates": gym.spaces.Box(-5.0, 5.0, (K, 4), np.float32),
    "mask": gym.spaces.MultiBinary(K),
})
BOX_SPACE = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)


def t(values):
    return torch.tensor(values, dtype=torch.float32)


# --- pure math ------------------------------------------------------------------------

REWARDS = t([1.0, 2.0, 3.0])
TERMINATED = t([0.0, 1.0, 0.0])  # row 0 and 2: truncated or running, so they bootstrap
NEXT_Q_TARGET = t([[1.0, 5.0], [2.0, 3.0], [4.0, 0.0]])
NEXT_Q_ONLINE = t([[3.0, 1.0], [0.0, 0.0], [0.0, 9.0]])


def test_td_target_plain():
    target = td_target(REWARDS, TERMINATED, 0.9, NEXT_Q_TARGET)
    # 1 + 0.9 * max(1, 5) ; 2 (terminated) ; 3 + 0.9 * max(4, 0)
    assert target.tolist() == pytest.approx([5.5, 2.0, 6.6])


def test_td_target_double():
    target = td_target(REWARDS, TERMINATED, 0.9, NEXT_Q_TARGET, NEXT_Q_ONLINE)
    # online argmax = [0, -, 1] -> target values 1 and 0
    assert target.tolist() == pytest.approx([1.9, 2.0, 3.0])


def test_td_target_masked_and_empty_next_state():
    next_mask = torch.tensor([[True, False], [True, True], [False, False]])
    plain = td_target(REWARDS, TERMINATED, 0.9, NEXT_Q_TARGET, next_mask=next_mask)
    # row 0: only action 0 allowed -> 1 + 0.9 * 1 ; row 2: nothing allowed -> value 0
    assert plain.tolist() == pytest.approx([1.9, 2.0, 3.0])
    double_mask = torch.tensor([[False, True], [True, True], [True, False]])
    double = td_target(REWARDS, TERMINATED, 0.9, NEXT_Q_TARGET, NEXT_Q_ONLINE, double_mask)
    # row 0: online would pick 0 but only 1 is allowed -> 1 + 0.9 * 5 ; row 2: 3 + 0.9 * 4
    assert double.tolist() == pytest.approx([5.5, 2.0, 6.6])


def test_td_target_gamma_zero_is_the_reward():
    target = td_target(REWARDS, TERMINATED, 0.0, NEXT_Q_TARGET, NEXT_Q_ONLINE)
    assert target.tolist() == pytest.approx([1.0, 2.0, 3.0])


def test_epsilon_schedule_decays_over_a_fraction_of_the_run():
    agent = DQNAgent(BOX_SPACE, gym.spaces.Discrete(2),
                     DQNConfig(epsilon_start=1.0, epsilon_end=0.05, epsilon_fraction=0.1),
                     seed=0)
    # 10% of 1000 steps = 100 steps; halfway: 1 + (0.05 - 1) * 0.5 = 0.525
    assert [agent.set_progress(step, 1000) for step in (0, 50, 100, 900)] == pytest.approx(
        [1.0, 0.525, 0.05, 0.05])
    assert agent.epsilon == 0.05


# --- config and spaces ------------------------------------------------------------------

def test_config_rejects_bad_values_and_unknown_keys():
    with pytest.raises(ConfigError, match="batch_size"):
        from_dict(DQNConfig, {"batch_size": -1})
    with pytest.raises(ConfigError, match="tau"):
        from_dict(DQNConfig, {"tau": 0.0})
    with pytest.raises(ConfigError, match="'lrr'"):
        from_dict(DQNConfig, {"lrr": 0.1})
    assert from_dict(DQNConfig, {"hidden_sizes": [8]}).hidden_sizes == [8]


def test_myopic_config_pins_gamma_to_zero():
    assert MyopicConfig().gamma == 0.0
    with pytest.raises(ConfigError, match="gamma must be 0 for the myopic"):
        from_dict(MyopicConfig, {"gamma": 0.9})


def test_slates_must_rank_one_candidate_table():
    assert DQNAgent(DICT_SPACE, gym.spaces.MultiDiscrete([K, K]), DQNConfig(),
                    seed=0).greedy_policy().slate_size == 2
    with pytest.raises(ConfigError, match="one table"):
        DQNAgent(DICT_SPACE, gym.spaces.MultiDiscrete([K, K - 1]), DQNConfig(), seed=0)


def test_candidate_count_must_match_actions():
    with pytest.raises(ConfigError, match="candidates"):
        DQNAgent(DICT_SPACE, gym.spaces.Discrete(K + 1), DQNConfig(), seed=0)


# --- acting -----------------------------------------------------------------------------

def small_config(**overrides) -> DQNConfig:
    return DQNConfig(**{"hidden_sizes": [16, 16], "batch_size": 8, **overrides})


def dict_obs(rng, n, mask=None):
    obs = {
        "viewer": rng.standard_normal((n, 3)).astype(np.float32),
        "candidates": rng.standard_normal((n, K, 4)).astype(np.float32),
        "mask": (rng.random((n, K)) < 0.5).astype(np.int8) if mask is None else mask,
    }
    obs["mask"][:, 0] = 1  # at least one allowed candidate
    return obs


def test_box_agent_acts_with_propensities():
    agent = DQNAgent(BOX_SPACE, gym.spaces.Discrete(2), small_config(), seed=0)
    obs = np.zeros((6, 4), np.float32)
    agent.epsilon = 0.5
    action = agent.act(obs)
    assert action.actions.shape == (6,) and action.actions.dtype == np.int64
    assert set(np.round(action.propensities, 6)) <= {0.75, 0.25}


def old_epsilon_greedy_act(agent, obs, epsilon):
    """DQNAgent.act as it was before the shared wrapper, draw for draw."""
    allowed = obs["mask"].astype(bool)
    greedy = top_k_slate(agent.greedy.scores(obs, allowed), 1).actions
    explore = agent.rng.random(len(greedy)) < epsilon
    random_actions = masked_uniform(allowed, 1, agent.rng).actions
    actions = np.where(explore, random_actions, greedy)
    share = epsilon / np.maximum(allowed.sum(axis=1), 1)
    return actions, np.where(actions == greedy, 1.0 - epsilon + share, share)


def test_act_draws_exactly_as_before_the_shared_wrapper():
    obs = dict_obs(np.random.default_rng(5), 64)
    new = DQNAgent(DICT_SPACE, gym.spaces.Discrete(K), small_config(), seed=9)
    old = DQNAgent(DICT_SPACE, gym.spaces.Discrete(K), small_config(), seed=9)
    for epsilon in (0.3, 0.05, 1.0, 0.3):
        new.epsilon = epsilon
        chosen = new.act(obs)
        actions, propensities = old_epsilon_greedy_act(old, obs, epsilon)
        np.testing.assert_array_equal(chosen.actions, actions)
        np.testing.assert_array_equal(chosen.propensities, propensities)
    assert new.rng.bit_generator.state == old.rng.bit_generator.state


def test_masked_candidates_never_chosen():
    agent = DQNAgent(DICT_SPACE, gym.spaces.Discrete(K), small_config(), seed=1)
    rng = np.random.default_rng(0)
    obs = dict_obs(rng, 500)
    for epsilon in (0.0, 0.3, 1.0):
        agent.epsilon = epsilon
        chosen = agent.act(obs).actions
        assert obs["mask"][np.arange(500), chosen].all()
    greedy = agent.greedy_policy().act(obs)
    assert obs["mask"][np.arange(500), greedy.actions].all()
    assert (greedy.propensities == 1.0).all()


def test_exploring_propensities_are_uniform_over_valid():
    agent = DQNAgent(DICT_SPACE, gym.spaces.Discrete(K), small_config(), seed=1)
    obs = dict_obs(np.random.default_rng(1), 50)
    agent.epsilon = 1.0
    action = agent.act(obs)
    np.testing.assert_allclose(action.propensities, 1.0 / obs["mask"].sum(axis=1))


def test_explicit_mask_overrides_the_observation():
    agent = DQNAgent(BOX_SPACE, gym.spaces.Discrete(3), small_config(), seed=2)
    mask = np.array([[False, True, False]] * 20)
    agent.epsilon = 0.5
    action = agent.act(np.zeros((20, 4), np.float32), mask)
    assert (action.actions == 1).all() and (action.propensities == 1.0).all()


def test_greedy_is_argmax_of_allowed_q():
    agent = DQNAgent(DICT_SPACE, gym.spaces.Discrete(K), small_config(), seed=3)
    obs = dict_obs(np.random.default_rng(2), 40)
    with torch.no_grad():
        q = agent.q_net({k: torch.as_tensor(obs[k]) for k in ("viewer", "candidates")}).numpy()
    expected = np.argmax(np.where(obs["mask"] == 1, q, -np.inf), axis=1)
    np.testing.assert_array_equal(agent.greedy_policy().act(obs).actions, expected)


# --- learning ---------------------------------------------------------------------------

def dict_batch(rng, n=8):
    obs, next_obs = dict_obs(rng, n), dict_obs(rng, n)
    actions = np.zeros(n, np.int64)  # candidate 0 is always allowed
    return ReplayBatch(obs, actions, rng.random(n).astype(np.float32), next_obs,
                       np.zeros(n, np.float32))


def test_frozen_greedy_policy_ignores_later_updates():
    agent = DQNAgent(DICT_SPACE, gym.spaces.Discrete(K), small_config(lr=0.05), seed=4)
    rng = np.random.default_rng(3)
    obs = dict_obs(rng, 16)
    live, frozen = agent.greedy_policy(), agent.greedy_policy(frozen=True)
    before = frozen.scores(obs)
    np.testing.assert_array_equal(live.scores(obs), before)
    for _ in range(5):
        agent.update(dict_batch(rng))
    np.testing.assert_array_equal(frozen.scores(obs), before)
    assert not np.allclose(live.scores(obs)[obs["mask"] == 1], before[obs["mask"] == 1])
    np.testing.assert_array_equal(live.scores(obs), agent.greedy_policy().scores(obs))


@pytest.mark.parametrize("double", [True, False])
def test_masked_next_candidates_do_not_affect_the_target(double):
    batch = dict_batch(np.random.default_rng(4))
    scrambled = {**batch.next_obs, "candidates": batch.next_obs["candidates"].copy()}
    hidden = batch.next_obs["mask"] == 0
    scrambled["candidates"][hidden] = 1e3  # would dominate any max if it leaked in
    results = []
    for next_obs in (batch.next_obs, scrambled):
        agent = DQNAgent(DICT_SPACE, gym.spaces.Discrete(K), small_config(double=double), seed=5)
        stats = agent.update(batch._replace(next_obs=next_obs))
        results.append((stats["loss"], [p.detach().clone() for p in agent.q_net.parameters()]))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1], strict=True):
        assert torch.equal(a, b)


def test_gamma_zero_regresses_on_the_reward():
    agent = DQNAgent(DICT_SPACE, gym.spaces.Discrete(K), small_config(gamma=0.0, huber=False),
                     seed=6)
    batch = dict_batch(np.random.default_rng(5))
    with torch.no_grad():
        q = agent.q_net({k: torch.as_tensor(batch.obs[k]) for k in ("viewer", "candidates")})
    expected = float(((q[:, 0] - torch.as_tensor(batch.rewards)) ** 2).mean())
    assert agent.update(batch)["loss"] == pytest.approx(expected, rel=1e-6)


def test_hard_target_copy_every_interval_and_polyak():
    agent = DQNAgent(DICT_SPACE, gym.spaces.Discrete(K),
                     small_config(target_update_interval=2), seed=7)
    batch = dict_batch(np.random.default_rng(6))

    def same():
        return all(torch.equal(a, b) for a, b in
                   zip(agent.q_net.parameters(), agent.target_net.parameters(), strict=True))

    agent.update(batch)
    assert not same()
    agent.update(batch)
    assert same()
    soft = DQNAgent(DICT_SPACE, gym.spaces.Discrete(K), small_config(tau=0.5), seed=7)
    before = [p.clone() for p in soft.target_net.parameters()]
    soft.update(batch)
    for old, target, online in zip(before, soft.target_net.parameters(),
                                   soft.q_net.parameters(), strict=True):
        torch.testing.assert_close(target, 0.5 * old + 0.5 * online)


def test_same_seed_same_agent_and_state_round_trip():
    def make(seed):
        return DQNAgent(BOX_SPACE, gym.spaces.Discrete(2), small_config(), seed=seed)

    a, b, c = make(0), make(0), make(1)
    for p, q in zip(a.q_net.parameters(), b.q_net.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(next(a.q_net.parameters()), next(c.q_net.parameters()))
    rng = np.random.default_rng(0)
    batch = ReplayBatch(rng.random((8, 4), dtype=np.float32), rng.integers(0, 2, 8),
                        rng.random(8, dtype=np.float32), rng.random((8, 4), dtype=np.float32),
                        np.zeros(8, np.float32))
    a.update(batch)
    c.load_state_dict(a.state_dict())
    obs = rng.random((10, 4), dtype=np.float32)
    a.epsilon = c.epsilon = 0.5
    np.testing.assert_array_equal(a.act(obs).actions, c.act(obs).actions)
    assert a.update(batch) == c.update(batch)


def test_agent_does_not_touch_the_global_torch_rng():
    state = torch.get_rng_state()
    DQNAgent(BOX_SPACE, gym.spaces.Discrete(2), small_config(), seed=0)
    assert torch.equal(state, torch.get_rng_state())


def test_update_returns_the_huber_td_loss_by_hand():
    # one transition, a linear 1-action network whose weights we set: Q(s) = w . s + b
    agent = DQNAgent(BOX_SPACE, gym.spaces.Discrete(1), small_config(hidden_sizes=[1],
                     gamma=0.5, double=False), seed=0)
    with torch.no_grad():
        for net in (agent.q_net, agent.target_net):
            first, last = net.net[0], net.net[2]
            first.weight.fill_(1.0), first.bias.fill_(0.0)
            last.weight.fill_(1.0), last.bias.fill_(0.0)
    obs = np.array([[1.0, 1.0, 0.0, 0.0]], np.float32)  # Q = relu(2) = 2
    next_obs = np.array([[1.0, 0.0, 0.0, 0.0]], np.float32)  # Q_target = 1
    batch = ReplayBatch(obs, np.array([0]), np.array([0.25], np.float32), next_obs,
                        np.zeros(1, np.float32))
    # y = 0.25 + 0.5 * 1 = 0.75; error 2 - 0.75 = 1.25 > 1: huber = 1.25 - 0.5 = 0.75
    stats = agent.update(batch)
    assert stats == pytest.approx({"loss": 0.75, "q_mean": 2.0})


def test_loading_other_widths_names_the_tensor_and_both_shapes():
    small = DQNAgent(BOX_SPACE, gym.spaces.Discrete(2), small_config(hidden_sizes=[8]), seed=0)
    wide = DQNAgent(BOX_SPACE, gym.spaces.Discrete(2), small_config(hidden_sizes=[16]), seed=0)
    with pytest.raises(CheckpointError, match=r"q_net\.net\.0\.weight: saved shape "
                       r"\(16, 4\), this config builds \(8, 4\)"):
        small.load_state_dict(wide.state_dict())
