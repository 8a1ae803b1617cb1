import numpy as np
import pytest

from liveq.algos.tabular import (
    QLearningConfig,
    TabularQAgent,
    q_learning_update,
)
from liveq.buffers.replay import ReplayBatch
from liveq.core.config import ConfigError, from_dict
from liveq.policies.explore import linear_schedule
from liveq.sim.chain import CHAIN_ID, chain_optimal_q
from liveq.train import load_agent, load_run_config, train
from liveq.train.run import read_metrics

EXPLORING = QLearningConfig(alpha=0.5, gamma=0.9, epsilon_start=1.0, epsilon_end=0.3,
                            epsilon_decay_steps=1000)


@pytest.mark.parametrize("bad", [{"alpha": 0.0}, {"alpha": 1.5}, {"gamma": -0.1},
                                 {"gamma": 1.1}, {"epsilon_end": 0.5, "epsilon_start": 0.2},
                                 {"epsilon_start": 1.2}, {"epsilon_decay_steps": -1}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        from_dict(QLearningConfig, bad)


def test_config_rejects_unknown_key():
    with pytest.raises(ConfigError, match="did you mean 'alpha'"):
        from_dict(QLearningConfig, {"alpah": 0.1})


def test_epsilon_schedule_by_hand():
    # start 1.0, end 0.1, 10 steps: step 4 -> 1.0 + (0.1 - 1.0) * 4/10 = 0.64
    assert linear_schedule(4, 1.0, 0.1, 10) == pytest.approx(0.64)
    assert linear_schedule(0, 1.0, 0.1, 10) == 1.0
    assert linear_schedule(10, 1.0, 0.1, 10) == 0.1
    assert linear_schedule(0, 1.0, 0.1, 0) == 0.1


def test_q_learning_update_by_hand():
    q = np.array([[0.0, 2.0], [1.0, 3.0]])
    # target = 0.5 + 0.9 * max(1, 3) = 3.2;  new = 2 + 0.5 * (3.2 - 2) = 2.6
    assert q_learning_update(q, 0, 1, 0.5, 1, False, alpha=0.5, gamma=0.9) == pytest.approx(2.6)
    # terminated: target = 0.5;  new = 2 + 0.5 * (0.5 - 2) = 1.25
    assert q_learning_update(q, 0, 1, 0.5, 1, True, alpha=0.5, gamma=0.9) == pytest.approx(1.25)
    # alpha = 1 jumps to the target: 0 + 0.9 * max(0, 2) = 1.8
    assert q_learning_update(q, 1, 0, 0.0, 0, False, alpha=1.0, gamma=0.9) == pytest.approx(1.8)
    assert q[0, 1] == 2.0  # pure: the table is not touched


def test_update_batch_of_one_matches_pure_update():
    agent = TabularQAgent(2, 2, QLearningConfig(alpha=0.5, gamma=0.9), seed=0)
    agent.q[:] = [[0.0, 2.0], [1.0, 3.0]]
    expected = q_learning_update(agent.q, 0, 1, 0.5, 1, False, alpha=0.5, gamma=0.9)
    stats = agent.update(ReplayBatch(np.array([0]), np.array([1]), np.array([0.5]),
                                     np.array([1]), np.array([False])))
    assert agent.q[0, 1] == pytest.approx(expected)
    assert stats == {"td_error": pytest.approx(3.2 - 2.0)} and agent.updates == 1
    np.testing.assert_array_equal(agent.q[1], [1.0, 3.0])


def test_update_repeated_pair_moves_towards_mean_target():
    # q = [[0, 0], [1, 3]], alpha 0.5, gamma 0.9; all targets use this table:
    #   (0,1): r=1, s'=1, not terminated -> 1 + 0.9*3 = 3.7
    #   (0,1): r=0, s'=1, terminated     -> 0
    #   (1,0): r=0, s'=1                 -> 0.9*3 = 2.7 (not 0.9*max of the updated row)
    # q[0,1] = 0 + 0.5 * ((3.7 + 0) / 2 - 0) = 0.925;  q[1,0] = 1 + 0.5 * (2.7 - 1) = 1.85
    batch = (np.array([0, 1, 0]), np.array([1, 0, 1]), np.array([1.0, 0.0, 0.0]),
             np.array([1, 1, 1]), np.array([False, False, True]))
    agents = []
    for order in ([0, 1, 2], [2, 1, 0]):
        agent = TabularQAgent(2, 2, QLearningConfig(alpha=0.5, gamma=0.9), seed=0)
        agent.q[:] = [[0.0, 0.0], [1.0, 3.0]]
        agent.update(ReplayBatch(*(column[order] for column in batch)))
        agents.append(agent)
    np.testing.assert_allclose(agents[0].q, [[0.0, 0.925], [1.85, 3.0]])
    np.testing.assert_array_equal(agents[0].q, agents[1].q)


TABLE = np.array([[1.0, 2.0, 0.0], [5.0, 5.0, 1.0], [9.0, 2.0, 3.0]])
MASK = np.array([[True, True, True], [True, True, True], [False, True, True]])


def test_epsilon_greedy_probabilities_by_hand():
    agent = TabularQAgent(3, 3, QLearningConfig(), seed=0)
    agent.q[:] = TABLE
    agent.epsilon = 0.3
    probs = agent.behaviour.probabilities(np.arange(3), MASK)
    # row 0: 0.3/3 = 0.1 each, greedy action 1 adds 0.7
    # row 1: tie between 0 and 1: the lowest index is greedy -> 0.1 + 0.7 = 0.8
    # row 2: action 0 masked; 0.15 each for 1 and 2, greedy among allowed is 2 (+0.7)
    expected = [[0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.0, 0.15, 0.85]]
    np.testing.assert_allclose(probs, expected)


def test_act_propensities_and_mask():
    agent = TabularQAgent(3, 3, QLearningConfig(), seed=0)
    agent.q[:] = TABLE
    agent.epsilon = 0.3
    states = np.repeat(np.arange(3), 4000)
    action = agent.act(states, np.repeat(MASK, 4000, axis=0))
    probs = agent.behaviour.probabilities(np.arange(3), MASK)
    np.testing.assert_allclose(action.propensities, probs[states, action.actions])
    assert not np.any((states == 2) & (action.actions == 0))
    counts = np.array([np.bincount(action.actions[states == s], minlength=3) for s in range(3)])
    np.testing.assert_allclose(counts / 4000, probs, atol=0.03)


def test_greedy_policy_live_and_frozen():
    agent = TabularQAgent(2, 2, QLearningConfig(alpha=1.0, gamma=0.0), seed=0)
    live, frozen = agent.greedy_policy(), agent.greedy_policy(frozen=True)
    agent.update(ReplayBatch(np.array([0]), np.array([1]), np.array([1.0]), np.array([1]),
                             np.array([True])))
    np.testing.assert_array_equal(live.act(np.array([0, 1])).actions, [1, 0])
    np.testing.assert_array_equal(frozen.act(np.array([0, 1])).actions, [0, 0])
    np.testing.assert_array_equal(frozen.q, np.zeros((2, 2)))


def test_act_rejects_non_integer_states():
    agent = TabularQAgent(3, 2, QLearningConfig(), seed=0)
    with pytest.raises(ValueError, match="integer states"):
        agent.act(np.array([0.5]))
    with pytest.raises(ValueError, match="states must be in"):
        agent.act(np.array([3]))


def test_state_dict_resumes_exactly():
    agent = TabularQAgent(3, 2, QLearningConfig(), seed=1)
    agent.q[:] = np.arange(6.0).reshape(3, 2)
    agent.epsilon = 0.5
    twin = TabularQAgent(3, 2, QLearningConfig(), seed=99)
    twin.load_state_dict(agent.state_dict())
    states = np.array([0, 1, 2] * 10)
    np.testing.assert_array_equal(agent.act(states).actions, twin.act(states).actions)
    np.testing.assert_array_equal(agent.q, twin.q)


def chain_config(n_states, steps, seed, **agent):
    return load_run_config({
        "seed": seed,
        "env": {"id": CHAIN_ID, "n_envs": 1, "kwargs": {"n_states": n_states}},
        "agent": {"name": "tabular_q", "tabular_q": {
            "alpha": 0.5, "gamma": 0.9, "epsilon_end": 0.3, "epsilon_decay_steps": 1000,
            **agent}},
        "train": {"total_env_steps": steps, "eval_every": 0, "eval_episodes": 2,
                  "checkpoint_every": 0, "log_every": 100, "progress": False},
    })


def trained_chain(tmp_path, n_states, steps, seed):
    summary = train(chain_config(n_states, steps, seed), tmp_path)
    agent, _ = load_agent(tmp_path / "checkpoints" / "latest.pt")
    return summary, agent


def test_learns_the_optimal_chain_policy(tmp_path):
    summary, agent = trained_chain(tmp_path, 5, 5000, seed=0)
    np.testing.assert_array_equal(agent.greedy_actions(), [1, 1, 1, 1, 1])
    np.testing.assert_allclose(agent.q, chain_optimal_q(5, 0.9), atol=1e-6)
    # greedy from state 0: 4 moves right, then 16 steps of reward 1 before truncation
    assert summary["final_eval"]["return"] == 16.0
    assert summary["episodes"] > 0
    logged = [r for r in read_metrics(tmp_path) if "train/td_error" in r]
    assert logged and logged[-1]["train/td_error"] < logged[0]["train/td_error"]


def test_learned_q_matches_hand_values_on_three_state_chain(tmp_path):
    # n=3, gamma=0.9, deterministic; going right is optimal everywhere:
    #   Q(2,R) = 1 + 0.9*Q(2,R)  -> 10;    Q(1,R) = 0.9*10 = 9;    Q(0,R) = 0.9*9 = 8.1
    #   Q(2,L) = 0.9*V(1) = 8.1;  Q(1,L) = 0.9*V(0) = 7.29;  Q(0,L) = 0.1 + 0.9*8.1 = 7.39
    hand = np.array([[7.39, 8.1], [7.29, 9.0], [8.1, 10.0]])
    np.testing.assert_allclose(chain_optimal_q(3, 0.9), hand, atol=1e-9)
    _, agent = trained_chain(tmp_path, 3, 3000, seed=3)
    np.testing.assert_allclose(agent.q, hand, atol=1e-6)


def test_training_twice_with_one_seed_is_bitwise_equal(tmp_path):
    _, first = trained_chain(tmp_path / "a", 5, 500, seed=11)
    _, second = trained_chain(tmp_path / "b", 5, 500, seed=11)
    _, other = trained_chain(tmp_path / "c", 5, 500, seed=12)
    np.testing.assert_array_equal(first.q, second.q)
    assert not np.array_equal(first.q, other.q)


def test_tabular_q_refuses_box_observations(tmp_path):
    config = chain_config(5, 10, seed=0)
    config.env.kwargs["one_hot"] = True
    with pytest.raises(ConfigError, match="Discrete observation"):
        train(config, tmp_path)
