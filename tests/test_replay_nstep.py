"""n-step returns: the pure arithmetic against hand numbers, and the buffer's windows over
per-env sequences with terminations, truncations, autoreset rows and wrap-around."""

import gymnasium as gym
import numpy as np
import pytest

from liveq.buffers.nstep import n_step_returns
from liveq.buffers.replay import ArrayCodec, DictCodec, ReplayBuffer
from liveq.core.config import ConfigError
from liveq.policies.base import masked_uniform
from liveq.train.collect import Collector, ReplayWriter
from test_train import FakeCandidateVecEnv

BOX = gym.spaces.Box(-1e6, 1e6, (1,), np.float32)
F, T = False, True


def test_n_step_returns_by_hand():
    # gamma 0.5, windows of 3 steps with rewards 1, 2, 4:
    #   no end:                 1 + 0.5*2 + 0.25*4 = 3,  bootstrap 0.5^3 = 0.125 from step 2
    #   terminated at step 1:   1 + 0.5*2 = 2,           no bootstrap, step 1
    #   truncated at step 0:    1,                       bootstrap 0.5 from step 0
    #   terminated at step 2:   3,                       no bootstrap, step 2
    #   stops at 1 (newest):    2,                       bootstrap 0.25 from step 1
    rewards = np.tile([1.0, 2.0, 4.0], (5, 1))
    terminated = np.array([[F, F, F], [F, T, F], [F, F, F], [F, F, T], [F, F, F]])
    ended = np.array([[F, F, F], [F, T, F], [T, F, F], [F, F, T], [F, T, F]])
    out = n_step_returns(rewards, terminated, ended, gamma=0.5)
    np.testing.assert_array_equal(out.returns, [3.0, 2.0, 1.0, 3.0, 2.0])
    np.testing.assert_array_equal(out.discounts, [0.125, 0.0, 0.5, 0.0, 0.25])
    np.testing.assert_array_equal(out.last, [2, 1, 0, 2, 1])


def test_n_step_returns_ignores_steps_after_the_first_end():
    # a termination after a truncation in the same window belongs to the next episode
    out = n_step_returns(np.array([[1.0, 100.0, 100.0]]), np.array([[F, T, F]]),
                         np.array([[T, T, F]]), gamma=0.9)
    assert out.returns[0] == 1.0 and out.discounts[0] == pytest.approx(0.9)
    assert out.last[0] == 0


def test_one_step_window_is_the_one_step_target():
    out = n_step_returns(np.array([[2.0], [3.0]]), np.array([[F], [T]]),
                         np.array([[F], [T]]), gamma=0.9)
    np.testing.assert_array_equal(out.returns, [2.0, 3.0])
    np.testing.assert_allclose(out.discounts, [0.9, 0.0])


# Two envs, six vector steps (NEXT_STEP autoreset: the row after an ended step is invalid).
#   env 0: r 1, 2, 4 (terminated), [autoreset], 8, 16
#   env 1: r 10, 20 (truncated), [autoreset], 40, 80, 160
# Observation of (step t, env e) is 100 t + e; its next observation 1000 + 100 t + e.
REWARDS = [(1, 10), (2, 20), (4, 0), (0, 40), (8, 80), (16, 160)]
TERMINATED = [(F, F), (F, F), (T, F), (F, F), (F, F), (F, F)]
TRUNCATED = [(F, F), (F, T), (F, F), (F, F), (F, F), (F, F)]
VALID = [(T, T), (T, T), (T, F), (F, T), (T, T), (T, T)]


def sequence_buffer(capacity=12, n_step=3, gamma=0.5) -> ReplayBuffer:
    buffer = ReplayBuffer(ArrayCodec(BOX), capacity, n_step=n_step, gamma=gamma)
    for t in range(6):
        ids = 100.0 * t + np.arange(2, dtype=np.float32)
        buffer.add({"obs": ids[:, None]}, np.zeros(2), np.array(REWARDS[t], np.float32),
                   {"obs": 1000.0 + ids[:, None]}, np.array(TERMINATED[t]),
                   np.array(VALID[t]), np.array(TRUNCATED[t]))
    return buffer


@pytest.mark.parametrize(("t", "env", "ret", "discount", "terminated", "next_obs"), [
    (0, 0, 1 + 0.5 * 2 + 0.25 * 4, 0.0, 1.0, 1200),  # termination at the window's end
    (1, 0, 2 + 0.5 * 4, 0.0, 1.0, 1200),  # termination inside the window
    (2, 0, 4, 0.0, 1.0, 1200),
    (0, 1, 10 + 0.5 * 20, 0.25, 0.0, 1101),  # truncation: bootstraps from its next obs
    (1, 1, 20, 0.5, 0.0, 1101),
    (3, 1, 40 + 0.5 * 80 + 0.25 * 160, 0.125, 0.0, 1501),  # a full window after autoreset
    (4, 0, 8 + 0.5 * 16, 0.25, 0.0, 1500),  # the newest steps: a shorter window
    (5, 1, 160, 0.5, 0.0, 1501),
])
def test_buffer_assembles_windows_per_env(t, env, ret, discount, terminated, next_obs):
    batch = sequence_buffer().batch(np.array([2 * t + env]))
    assert batch.obs[0, 0] == 100 * t + env
    assert batch.rewards[0] == pytest.approx(ret)
    assert batch.discounts[0] == pytest.approx(discount)
    assert batch.terminated[0] == terminated
    assert batch.next_obs[0, 0] == next_obs


def test_windows_across_the_buffer_end():
    # capacity 7 with 2 envs: rows wrap mid-step; the 7 newest rows survive
    buffer = ReplayBuffer(ArrayCodec(BOX), 7, n_step=3, gamma=0.5)
    for t in range(6):
        ids = 100.0 * t + np.arange(2, dtype=np.float32)
        buffer.add({"obs": ids[:, None]}, np.zeros(2), np.full(2, t + 1.0, np.float32),
                   {"obs": 1000.0 + ids[:, None]}, np.zeros(2, bool), np.ones(2, bool),
                   np.zeros(2, bool))
    rows = np.arange(7)
    batch = buffer.batch(rows)
    for row in rows:
        t, env = divmod(int(batch.obs[row, 0]), 100)
        steps = range(t, min(t + 3, 6))  # the same env's steps still to come, at most 3
        assert batch.rewards[row] == pytest.approx(sum(0.5 ** i * (s + 1)
                                                       for i, s in enumerate(steps)))
        assert batch.discounts[row] == pytest.approx(0.5 ** len(steps))
        assert batch.next_obs[row, 0] == 1000 + 100 * steps[-1] + env


def test_sampled_n_step_batches_skip_autoreset_rows():
    batch = sequence_buffer().sample(500, np.random.default_rng(0))
    assert {int(x) for x in batch.obs[:, 0]} == {0, 1, 100, 101, 200, 301, 400, 401, 500, 501}
    assert batch.discounts.shape == (500,)


def test_n_step_needs_adds_of_one_size_and_a_positive_n():
    buffer = ReplayBuffer(ArrayCodec(BOX), 10, n_step=2, gamma=0.9)
    for n in (2, 3):
        buffer.add({"obs": np.zeros((n, 1))}, np.zeros(n), np.zeros(n), {"obs": np.zeros((n, 1))},
                   np.zeros(n), np.ones(n, bool))
    with pytest.raises(ValueError, match="same number of envs"):
        buffer.sample(4, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="n_step"):
        ReplayBuffer(ArrayCodec(BOX), 10, n_step=0)


def test_n_step_state_round_trip_samples_the_same():
    buffer = sequence_buffer()
    copy = ReplayBuffer(ArrayCodec(BOX), 12, n_step=3, gamma=0.5)
    copy.load_state_dict(buffer.state_dict())
    first = buffer.sample(9, np.random.default_rng(4))
    second = copy.sample(9, np.random.default_rng(4))
    for a, b in zip(first[:6], second[:6], strict=True):
        np.testing.assert_array_equal(a, b)


class RandomAllowed:
    """A uniformly random policy over each row's allowed candidates."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def act(self, obs):
        return masked_uniform(obs["mask"].astype(bool), 1, self.rng)


def test_collected_windows_match_the_episodes_step_by_step():
    # the fake env terminates at random and truncates after 6 steps, with NEXT_STEP
    # autoreset; every stored row's n-step transition is recomputed from the raw steps
    env = FakeCandidateVecEnv(num_envs=3, horizon=6)
    codec = DictCodec(env.single_observation_space)
    buffer = ReplayBuffer(codec, 3 * 60, n_step=3, gamma=0.9)
    collector = Collector(env, ReplayWriter(codec, buffer))
    collector.reset(seed=5)
    policy, steps = RandomAllowed(0), []
    for _ in range(60):
        steps.append(collector.step(policy))
    assert any(s.terminated.any() for s in steps) and any(s.truncated.any() for s in steps)
    rows = np.flatnonzero(buffer.valid)
    batch = buffer.batch(rows)
    for i, row in enumerate(rows):
        t, env_id = divmod(int(row), 3)
        ret, k = 0.0, 0
        while True:
            s = steps[t + k]
            ret += 0.9 ** k * float(s.rewards[env_id])
            if s.terminated[env_id] or s.truncated[env_id] or k == 2 or t + k == 59:
                break
            k += 1
        discount = 0.0 if s.terminated[env_id] else 0.9 ** (k + 1)
        assert batch.rewards[i] == pytest.approx(ret, rel=1e-5)
        assert batch.discounts[i] == pytest.approx(discount, rel=1e-6)
        np.testing.assert_array_equal(batch.next_obs["viewer"][i], s.next_obs["viewer"][env_id])
