"""Contract tests of the LiveStream simulator."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import liveq.sim  # noqa: F401
from liveq.core.config import ConfigError
from liveq.sim import InvalidActionError
from liveq.sim.livestream import LiveStreamEnv, LiveStreamVectorEnv
from liveq.sim.oracle import expected_immediate_reward

SMALL = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2}


def first_valid(obs):
    return np.argmax(obs["mask"], axis=-1)


@pytest.mark.parametrize("kwargs", [{}, SMALL, {"slate_size": 3},
                                    {"invalid_action": "empty", "n_streamers": 40}])
def test_check_env_passes_without_warnings(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make("liveq/LiveStream-v0", **kwargs).unwrapped)


def rollout(env, steps, seed):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    trace = []
    for _ in range(steps):
        scores = np.where(obs["mask"].astype(bool), rng.random(obs["mask"].shape), -1)
        obs, reward, term, trunc, _ = env.step(np.argmax(scores, axis=-1))
        trace.append((obs["candidates"].copy(), np.copy(reward), np.copy(term), np.copy(trunc)))
        if isinstance(env, LiveStreamEnv) and (term or trunc):
            obs, _ = env.reset()
    return trace


def assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


def test_same_seed_same_trajectory_vector_and_single():
    assert_same(rollout(LiveStreamVectorEnv(16, **SMALL), 40, seed=5),
                rollout(LiveStreamVectorEnv(16, **SMALL), 40, seed=5))
    assert_same(rollout(LiveStreamEnv(**SMALL), 40, seed=5),
                rollout(LiveStreamEnv(**SMALL), 40, seed=5))
    other = rollout(LiveStreamVectorEnv(16, **SMALL), 5, seed=6)
    assert not np.array_equal(other[0][0], rollout(LiveStreamVectorEnv(16, **SMALL), 5, 5)[0][0])


def test_vector_env_is_registered_batched_core():
    env = gym.make_vec("liveq/LiveStream-v0", num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(env, LiveStreamVectorEnv)
    obs, _ = env.reset(seed=0)
    assert obs["candidates"].shape == (4, 16, 11)
    assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP


def test_masked_and_out_of_range_actions_raise_clear_errors():
    env = LiveStreamVectorEnv(2, n_streamers=30, n_candidates=16)
    obs, _ = env.reset(seed=0)
    while obs["mask"].all():  # wait for an hour with fewer live streams than slots
        obs, *_ = env.step(first_valid(obs))
    row, slot = np.argwhere(obs["mask"] == 0)[0]
    actions = first_valid(obs)
    actions[row] = slot
    with pytest.raises(InvalidActionError, match=f"session {row}: candidate {slot} is masked"):
        env.step(actions)
    with pytest.raises(InvalidActionError, match="out of range"):
        env.step(np.array([16, 0]))
    with pytest.raises(InvalidActionError, match="shape"):
        env.step(np.array([0, 0, 0]))


def test_empty_mode_treats_invalid_action_as_no_recommendation():
    env = LiveStreamVectorEnv(3, invalid_action="empty")
    env.reset(seed=1)
    _, reward, _, _, info = env.step(np.array([99, -1, 99]))
    assert not info["recommended"].any() and not info["clicked"].any()
    assert np.all(reward == 0.0)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="unknown config key 'n_streamer'.*n_streamers"):
        LiveStreamEnv(n_streamer=10)
    with pytest.raises(ConfigError, match="n_candidates must be at least 1"):
        LiveStreamEnv(n_candidates=-3)
    with pytest.raises(ConfigError, match="rewards.gift: expected float"):
        LiveStreamEnv(rewards={"gift": "many"})


def test_replay_codec_rebuilds_observations_exactly():
    env = LiveStreamVectorEnv(8, **SMALL)
    obs, _ = env.reset(seed=3)
    codec = env.make_replay_codec(8 * 30)
    stored, seen = [], []
    for _ in range(40):
        stored.append({k: v.copy() for k, v in codec.encode(obs).items()})
        seen.append(obs)
        obs, *_ = env.step(first_valid(obs))
    for fields, original in list(zip(stored, seen, strict=True))[12:]:
        decoded = codec.decode(fields)
        for key in original:
            np.testing.assert_array_equal(decoded[key], original[key])
    with pytest.raises(RuntimeError, match="older than"):
        codec.decode(stored[0])


def test_state_round_trip_continues_bit_for_bit():
    env = LiveStreamVectorEnv(8, **SMALL)
    obs, _ = env.reset(seed=2)
    for _ in range(15):
        obs, *_ = env.step(first_valid(obs))
    state = env.get_state()
    after = [env.step(first_valid(obs))[1]]
    obs2 = env.set_state(state)
    np.testing.assert_array_equal(obs2["candidates"], obs["candidates"])
    again = [env.step(first_valid(obs2))[1]]
    np.testing.assert_array_equal(after[0], again[0])


def test_oracle_expected_reward_matches_monte_carlo():
    env = LiveStreamVectorEnv(32, **SMALL)
    obs, _ = env.reset(seed=4)
    for _ in range(5):
        obs, *_ = env.step(first_valid(obs))
    expected = expected_immediate_reward(env.core)
    actions = np.argmax(expected, axis=1)
    state = env.get_state()
    draws = []
    for _ in range(1000):
        env.set_state(state)
        env.core.rng = np.random.default_rng(len(draws))  # fresh noise, same state
        draws.append(env.step(actions)[1])
    draws = np.array(draws)
    mean, sem = draws.mean(axis=0), draws.std(axis=0) / np.sqrt(len(draws)) + 1e-9
    chosen = expected[np.arange(32), actions]
    live = ~state["needs_reset"]  # sessions restarting this step earn nothing
    gap = np.abs(mean - chosen)[live] / sem[live]
    assert gap.max() < 5.0, gap


def test_world_changes_streams_end_newcomers_and_returning_viewers():
    env = LiveStreamVectorEnv(64, **SMALL)
    obs, _ = env.reset(seed=0)
    live_sets, born = [], env.core.streamers.born_tick.copy()
    saw_returning = saw_new = False
    for _ in range(300):  # 50 hours of platform time
        obs, _, term, trunc, _ = env.step(first_valid(obs))
        live_sets.append(env.core.streamers.live.copy())
        days = env.core.viewers.days
        saw_returning |= bool((days > 0).any())
        saw_new |= bool(((days == 0) & (env.core.viewers.step == 0)).any())
    live_sets = np.array(live_sets)
    assert live_sets.any(axis=0).sum() > live_sets.all(axis=0).sum()  # streams go and come
    assert live_sets.sum(axis=1).min() < live_sets.sum(axis=1).max()  # prime time exists
    assert (env.core.streamers.born_tick != born).any()  # new streamers arrived
    assert saw_returning and saw_new


def test_one_million_transitions_of_the_default_world_fit_in_two_gib():
    from liveq.buffers.replay import ReplayBuffer, make_codec

    env = LiveStreamVectorEnv(128)  # configs/livestream_default.yaml
    codec = make_codec(env, 1_000_000)
    buffer = ReplayBuffer(codec, 1_000_000)  # zero-filled pages are not touched here
    total = buffer.nbytes() + codec.nbytes()
    assert total < 2 * 2**30, total / 2**30
    feature_copies = 2 * 1_000_000 * (16 * 11 + 22) * 4  # what storing features would cost
    assert total < feature_copies
