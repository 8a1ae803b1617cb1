"""Sum-tree and proportional prioritized replay: draws proportional to priority (chi-square),
exact totals, importance weights by hand, priority write-back, exact resume."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy import stats

from liveq.buffers.prioritized import PrioritizedReplayBuffer, make_replay_buffer, priority_beta
from liveq.buffers.replay import ArrayCodec, Priorities, ReplayBuffer, ReplaySchedule
from liveq.buffers.sum_tree import SumTree
from liveq.train import load_checkpoint, train
from test_train import (
    assert_same_tensors,
    fake_config,
    fake_evaluate,
    stable_metrics,
    weights,
)

BOX = gym.spaces.Box(-1e6, 1e6, (1,), np.float32)


def test_sum_tree_draws_in_proportion_to_priority():
    tree = SumTree(6)  # not a power of two: two padding leaves
    priorities = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 10.0])
    tree.update(np.arange(6), priorities)
    rng = np.random.default_rng(0)
    draws = tree.find(rng.random(40_000) * tree.total)
    counts = np.bincount(draws, minlength=6)
    assert counts[4] == 0  # a zero priority is never drawn
    positive = priorities > 0
    expected = priorities[positive] / priorities.sum() * len(draws)
    assert stats.chisquare(counts[positive], expected).pvalue > 0.01
    # and a tree whose priorities are not proportional is caught by the same test
    wrong = priorities[positive] ** 1.2 / (priorities[positive] ** 1.2).sum() * len(draws)
    assert stats.chisquare(counts[positive], wrong).pvalue < 1e-6


def test_stratified_sample_is_proportional_too():
    tree = SumTree(4)
    tree.update(np.arange(4), [1.0, 1.0, 2.0, 4.0])
    rng = np.random.default_rng(1)
    counts = np.bincount(np.concatenate([tree.sample(8, rng) for _ in range(2000)]),
                         minlength=4)
    assert stats.chisquare(counts, np.array([1, 1, 2, 4]) / 8 * 16_000).pvalue > 0.01


def test_sum_tree_updates_and_exact_totals():
    tree = SumTree(5)
    tree.update(np.array([0, 1, 2, 3, 4]), [1.0, 2.0, 3.0, 4.0, 5.0])
    assert tree.total == 15.0
    tree.update(np.array([1, 3]), [0.5, 0.25])
    assert tree.total == 1.0 + 0.5 + 3.0 + 0.25 + 5.0
    np.testing.assert_array_equal(tree.priorities(), [1.0, 0.5, 3.0, 0.25, 5.0])
    np.testing.assert_array_equal(tree.priorities(np.array([4, 0])), [5.0, 1.0])
    assert tree.find(np.array([0.0, 0.99, 1.0, 1.49, 1.5, 4.49, 4.5, 4.75, 9.74])).tolist() == [
        0, 0, 1, 1, 2, 2, 3, 4, 4]
    with pytest.raises(ValueError, match="non-negative"):
        tree.update(np.array([0]), [-1.0])
    with pytest.raises(IndexError):
        tree.update(np.array([5]), [1.0])


def test_sum_tree_is_a_function_of_its_leaves():
    # written in two orders, and rebuilt from a checkpoint: the same tree, bit for bit
    rng = np.random.default_rng(2)
    leaves, priorities = rng.integers(0, 37, 200), rng.random(200) * 1e3
    one, two = SumTree(37), SumTree(37)
    for i in range(0, 200, 7):
        one.update(leaves[i:i + 7], priorities[i:i + 7])
    final = {int(leaf): p for leaf, p in zip(leaves, priorities, strict=True)}
    two.update(np.array(list(final)), np.array(list(final.values())))
    np.testing.assert_array_equal(one.nodes, two.nodes)
    three = SumTree(37)
    three.load_state_dict(one.state_dict())
    np.testing.assert_array_equal(one.nodes, three.nodes)


def test_sum_tree_never_draws_an_empty_leaf_at_the_edges():
    tree = SumTree(8)
    tree.update(np.array([2, 5]), [0.1, 0.2])
    values = np.array([0.0, np.nextafter(tree.total, 0), tree.total, tree.total * 2])
    assert set(tree.find(values).tolist()) <= {2, 5}
    with pytest.raises(ValueError, match="all 0"):
        SumTree(3).find(np.array([0.0]))


def box_buffer(capacity=8, alpha=0.5, eps=0.01) -> PrioritizedReplayBuffer:
    buffer = PrioritizedReplayBuffer(ArrayCodec(BOX), capacity, alpha=alpha, eps=eps)
    ids = np.arange(4, dtype=np.float32)[:, None]
    buffer.add({"obs": ids}, np.zeros(4), np.zeros(4), {"obs": ids}, np.zeros(4),
               np.array([True, True, False, True]))
    return buffer


def test_new_rows_at_max_priority_and_td_updates():
    buffer = box_buffer()
    np.testing.assert_array_equal(buffer.tree.priorities()[:4], [1.0, 1.0, 0.0, 1.0])
    buffer.update_priorities(np.array([0, 1]), np.array([-3.99, 0.0]))
    # p = |delta| + eps = 4.0 and 0.01; stored p^alpha = 2.0 and 0.1
    np.testing.assert_allclose(buffer.tree.priorities()[:4], [2.0, 0.1, 0.0, 1.0])
    assert buffer.max_priority == pytest.approx(4.0)
    ids = np.array([[9.0], [10.0]], np.float32)
    buffer.add({"obs": ids}, np.zeros(2), np.zeros(2), {"obs": ids}, np.zeros(2),
               np.ones(2, bool))
    np.testing.assert_allclose(buffer.tree.priorities()[4:6], [2.0, 2.0])  # 4.0 ** 0.5


def test_importance_weights_by_hand():
    # stored p^alpha = [2, 0.1, 0, 1]: total 3.1, P = [2, 0.1, -, 1] / 3.1, N = 3 valid
    # w = (N P)^-beta with beta 1: [3.1/6, 3.1/0.3, 3.1/3]; normalised by the batch max
    buffer = box_buffer()
    buffer.update_priorities(np.array([0, 1]), np.array([3.99, 0.0]))
    batch = buffer.sample(300, np.random.default_rng(0), beta=1.0)
    assert set(batch.indices.tolist()) == {0, 1, 3}
    expected = {0: (3.1 / 6) / (3.1 / 0.3), 1: 1.0, 3: (3.1 / 3) / (3.1 / 0.3)}
    for row, weight in zip(batch.indices, batch.weights, strict=True):
        assert weight == pytest.approx(expected[int(row)], rel=1e-6)
    np.testing.assert_array_equal(batch.obs[:, 0], batch.indices)
    uniform = buffer.sample(50, np.random.default_rng(0), beta=0.0)
    np.testing.assert_array_equal(uniform.weights, 1.0)


def test_beta_anneals_and_the_schedule_picks_the_buffer():
    p = Priorities(alpha=0.6, beta_start=0.4, beta_end=1.0, eps=1e-6)
    assert priority_beta(p, 0, 1000) == 0.4
    assert priority_beta(p, 500, 1000) == pytest.approx(0.7)
    assert priority_beta(p, 1000, 1000) == 1.0
    schedule = ReplaySchedule(batch_size=4, buffer_size=16, learning_starts=0, train_freq=1,
                              gradient_steps=1, n_step=3, gamma=0.9)
    plain = make_replay_buffer(ArrayCodec(BOX), schedule)
    assert type(plain) is ReplayBuffer and plain.n_step == 3 and plain.gamma == 0.9
    prioritized = make_replay_buffer(ArrayCodec(BOX), schedule._replace(priorities=p))
    assert isinstance(prioritized, PrioritizedReplayBuffer)
    assert (prioritized.alpha, prioritized.eps, prioritized.n_step) == (0.6, 1e-6, 3)


def test_state_round_trip_keeps_tree_and_max_priority():
    buffer = box_buffer()
    buffer.update_priorities(np.array([3]), np.array([7.0]))
    copy = PrioritizedReplayBuffer(ArrayCodec(BOX), 8, alpha=0.5, eps=0.01)
    copy.load_state_dict(buffer.state_dict())
    np.testing.assert_array_equal(copy.tree.nodes, buffer.tree.nodes)
    assert copy.max_priority == buffer.max_priority == pytest.approx(7.01)
    first = buffer.sample(5, np.random.default_rng(3), beta=0.5)
    second = copy.sample(5, np.random.default_rng(3), beta=0.5)
    np.testing.assert_array_equal(first.indices, second.indices)
    np.testing.assert_array_equal(first.weights, second.weights)


RAINBOW_LITE = {"prioritized": True, "n_step": 3, "dueling": True}


def prioritized_config(**switches):
    config = fake_config()
    for key, value in {"prioritized": True, **switches}.items():
        setattr(config.agent.dqn, key, value)
    return config


def test_training_writes_td_errors_back_as_priorities(tmp_path):
    train(prioritized_config(), tmp_path, evaluate=fake_evaluate)
    replay = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["learning"]["replay"]
    leaves = np.asarray(replay["tree"]["priorities"])
    valid = np.asarray(replay["valid"])
    assert (leaves[~valid] == 0).all() and (leaves[valid] > 0).all()
    # updated rows carry (|TD error| + eps)^alpha, so they differ from the new-row level
    assert len(np.unique(leaves[valid])) > 50
    assert replay["max_priority"] >= np.max(leaves) ** (1 / 0.6) * (1 - 1e-9)


@pytest.mark.parametrize("switches", [{}, RAINBOW_LITE], ids=["prioritized", "all_three"])
def test_prioritized_resume_matches_uninterrupted_run_bitwise(tmp_path, switches):
    train(prioritized_config(**switches), tmp_path / "full", evaluate=fake_evaluate)
    calls = []

    def crash_at_300(policy, n_episodes, seed):
        calls.append(seed)
        if len(calls) == 3:  # after the checkpoint at 200
            raise KeyboardInterrupt
        return fake_evaluate(policy, n_episodes, seed)

    with pytest.raises(KeyboardInterrupt):
        train(prioritized_config(**switches), tmp_path / "cut", evaluate=crash_at_300)
    summary = train(prioritized_config(**switches), tmp_path / "cut", resume=True,
                    evaluate=fake_evaluate)
    assert summary["env_steps"] == 400
    assert_same_tensors(weights(tmp_path / "full"), weights(tmp_path / "cut"))
    assert stable_metrics(tmp_path / "full") == stable_metrics(tmp_path / "cut")
    full, cut = (load_checkpoint(tmp_path / name / "checkpoints" / "latest.pt")["learning"]
                 for name in ("full", "cut"))
    np.testing.assert_array_equal(full["replay"]["tree"]["priorities"],
                                  cut["replay"]["tree"]["priorities"])
    assert full["replay"]["max_priority"] == cut["replay"]["max_priority"]


def test_all_three_switches_change_the_run(tmp_path):
    train(fake_config(), tmp_path / "plain", evaluate=fake_evaluate)
    train(prioritized_config(**RAINBOW_LITE), tmp_path / "all", evaluate=fake_evaluate)
    plain, rainbow = weights(tmp_path / "plain"), weights(tmp_path / "all")
    assert "value.0.weight" in rainbow["q_net"] and "value.0.weight" not in plain["q_net"]
    shared = "head.0.weight"
    assert not torch.equal(plain["q_net"][shared], rainbow["q_net"][shared])
