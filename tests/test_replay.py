"""Replay buffer and observation codecs."""

import gymnasium as gym
import numpy as np
import pytest

from liveq.buffers.replay import ArrayCodec, DictCodec, ReplayBatch, ReplayBuffer, make_codec
from liveq.core.config import ConfigError

BOX = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
DICT = gym.spaces.Dict({
    "viewer": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
    "candidates": gym.spaces.Box(-1.0, 1.0, (4, 3), np.float32),
    "mask": gym.spaces.MultiBinary(4),
})


def box_step(start: int, n_envs: int = 2) -> dict[str, np.ndarray]:
    """Encoded Box obs whose every entry equals its transition number, start, start+1..."""
    values = np.arange(start, start + n_envs, dtype=np.float32)
    return {"obs": np.repeat(values[:, None], 3, axis=1)}


def add_numbered(buffer: ReplayBuffer, start: int, valid=(True, True)) -> None:
    n = len(valid)
    ids = np.arange(start, start + n)
    buffer.add(box_step(start, n), ids, ids.astype(np.float32) / 10, box_step(start + 100, n),
               np.zeros(n, bool), np.array(valid))


def test_circular_overwrite_keeps_newest():
    buffer = ReplayBuffer(ArrayCodec(BOX), capacity=5)
    for step in range(3):  # 6 transitions into 5 slots
        add_numbered(buffer, 2 * step)
    assert len(buffer) == 5 and buffer.pos == 1
    assert buffer.actions.tolist() == [5, 1, 2, 3, 4]  # 0 overwritten by 5
    assert buffer.obs["obs"][0, 0] == 5 and buffer.next_obs["obs"][0, 0] == 105
    assert buffer.rewards[0] == pytest.approx(0.5)


def test_more_rows_than_capacity_in_one_add():
    buffer = ReplayBuffer(ArrayCodec(BOX), capacity=3)
    add_numbered(buffer, 0, valid=(True,) * 5)
    assert sorted(buffer.actions.tolist()) == [2, 3, 4] and len(buffer) == 3


def test_invalid_rows_are_never_sampled():
    buffer = ReplayBuffer(ArrayCodec(BOX), capacity=10)
    add_numbered(buffer, 0, valid=(True, False, True))
    add_numbered(buffer, 10, valid=(False, False, False))
    assert len(buffer) == 2
    assert buffer.pos == 6  # every step takes n_envs slots: the buffer spans whole steps
    batch = buffer.sample(200, np.random.default_rng(0))
    assert set(batch.actions.tolist()) == {0, 2}
    np.testing.assert_array_equal(batch.obs[:, 0], batch.actions)


def test_only_invalid_rows_cannot_be_sampled():
    buffer = ReplayBuffer(ArrayCodec(BOX), capacity=4)
    add_numbered(buffer, 0, valid=(False, False))
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1, np.random.default_rng(0))


def test_terminated_is_stored_per_row():
    buffer = ReplayBuffer(ArrayCodec(BOX), capacity=4)
    buffer.add(box_step(0), np.array([0, 1]), np.ones(2), box_step(1),
               np.array([True, False]), np.ones(2, bool))
    assert buffer.terminated[:2].tolist() == [1.0, 0.0]


def test_sample_shapes_box():
    buffer = ReplayBuffer(ArrayCodec(BOX), capacity=8)
    add_numbered(buffer, 0)
    batch = buffer.sample(16, np.random.default_rng(0))
    assert isinstance(batch, ReplayBatch)
    assert batch.obs.shape == (16, 3) and batch.next_obs.shape == (16, 3)
    assert batch.actions.shape == (16,) and batch.actions.dtype == np.int64
    assert batch.rewards.shape == (16,) and batch.terminated.shape == (16,)
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.obs[:, 0] + 100)


def dict_obs(rng: np.random.Generator, n_envs: int) -> dict[str, np.ndarray]:
    return {
        "viewer": rng.random((n_envs, 2), dtype=np.float32),
        "candidates": rng.random((n_envs, 4, 3), dtype=np.float32),
        "mask": (rng.random((n_envs, 4)) < 0.5).astype(np.int8),
    }


def test_sample_shapes_dict_and_codec_round_trip():
    codec = DictCodec(DICT)
    rng = np.random.default_rng(1)
    obs = dict_obs(rng, 3)
    encoded = codec.encode(obs, {})
    decoded = codec.decode(encoded)
    for key in obs:
        np.testing.assert_array_equal(decoded[key], obs[key])
    assert codec.fields["mask"] == ((4,), np.dtype(np.int8))
    buffer = ReplayBuffer(codec, capacity=8)
    buffer.add(encoded, np.array([0, 1, 2]), np.ones(3), codec.encode(dict_obs(rng, 3), {}),
               np.zeros(3, bool), np.ones(3, bool))
    batch = buffer.sample(5, rng)
    assert batch.obs["viewer"].shape == (5, 2)
    assert batch.obs["candidates"].shape == (5, 4, 3)
    assert batch.next_obs["mask"].shape == (5, 4) and batch.next_obs["mask"].dtype == np.int8


def test_array_codec_round_trip():
    codec = ArrayCodec(BOX)
    obs = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(codec.decode(codec.encode(obs, {})), obs)
    assert codec.fields == {"obs": ((3,), np.dtype(np.float32))}


def test_state_dict_round_trip_continues_identically():
    buffer = ReplayBuffer(ArrayCodec(BOX), capacity=5)
    for step in range(3):
        add_numbered(buffer, 2 * step)
    copy = ReplayBuffer(ArrayCodec(BOX), capacity=5)
    copy.load_state_dict(buffer.state_dict())
    for b in (buffer, copy):
        add_numbered(b, 50)
    first = buffer.sample(7, np.random.default_rng(3))
    second = copy.sample(7, np.random.default_rng(3))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (copy.pos, len(copy)) == (buffer.pos, len(buffer))


def test_state_dict_rejects_other_capacity():
    buffer = ReplayBuffer(ArrayCodec(BOX), capacity=5)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(ArrayCodec(BOX), capacity=6).load_state_dict(buffer.state_dict())


def test_nbytes_counts_preallocated_arrays():
    buffer = ReplayBuffer(DictCodec(DICT), capacity=10)
    per_obs = 2 * 4 + 4 * 3 * 4 + 4 * 1  # viewer + candidates float32, mask int8
    # obs, next obs, action, reward, terminated, truncated, valid
    per_transition = 2 * per_obs + 8 + 4 + 4 + 1 + 1
    assert buffer.nbytes() == 10 * per_transition


def test_sample_from_empty_buffer_fails():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(ArrayCodec(BOX), capacity=2).sample(1, np.random.default_rng(0))


class EnvWithCodec:
    single_observation_space = BOX

    def make_replay_codec(self, capacity):
        return ("own codec", capacity)


def test_make_codec_prefers_the_envs_own_codec():
    assert make_codec(EnvWithCodec(), 7) == ("own codec", 7)


def test_make_codec_from_spaces():
    envs = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")
    assert isinstance(make_codec(envs, 4), ArrayCodec)
    envs.close()

    class DictEnv:
        single_observation_space = DICT

    class DiscreteEnv:
        single_observation_space = gym.spaces.Discrete(3)

    assert isinstance(make_codec(DictEnv(), 4), DictCodec)
    with pytest.raises(ConfigError, match="Discrete"):
        make_codec(DiscreteEnv(), 4)
