"""The bar of LiveStream-v0's env tests, applied to each scenario env (AdPlacement,
Ecommerce, LiveRoom): bad actions refused, stepping outside an episode refused, seeded then
unseeded resets reproducible, exact state round trips (also through a checkpoint and a
resumed training run), and configs refusing non-finite numbers and unknown keys by name."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import liveq  # noqa: F401  (registers the envs)
from liveq.core.errors import ConfigError, InvalidActionError
from liveq.sim.ads_config import AdPlacementConfig
from liveq.sim.room_config import RoomConfig
from liveq.sim.shop import EcommerceConfig
from liveq.train.checkpoint import load_checkpoint, save_checkpoint

ADS, SHOP, ROOM = "liveq/AdPlacement-v0", "liveq/Ecommerce-v0", "liveq/LiveRoom-v0"
ENVS = (ADS, SHOP, ROOM)
SHORT = {ADS: {"day_minutes": 20.0, "n_campaigns": 3},  # 4 opportunities a day at most
         SHOP: {"max_session_steps": 3, "n_products": 40, "n_candidates": 6},
         ROOM: {"max_minutes": 3}}
CONFIGS = {ADS: AdPlacementConfig, SHOP: EcommerceConfig, ROOM: RoomConfig}
FLOAT_FIELD = {ADS: "ctr_base", SHOP: "click_bias", ROOM: "gift_value"}


def vec(env_id, n, **kwargs):
    return gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point",
                        **kwargs).unwrapped


def allowed(env, obs) -> np.ndarray:
    """The actions allowed in `obs` (batched or not): the shop's and the ad env's mask,
    every prompt in the live room."""
    n = (env.single_action_space if hasattr(env, "single_action_space")
         else env.action_space).n
    if isinstance(obs, dict):
        return obs["mask"].astype(bool)
    return np.ones(obs.shape[:-1] + (n,), dtype=bool)


def random_allowed(env, obs, rng) -> np.ndarray:
    keys = np.where(allowed(env, obs), rng.random(allowed(env, obs).shape), -1.0)
    return np.argmax(keys, axis=-1)


def first_obs_array(obs) -> np.ndarray:
    return obs["candidates"] if isinstance(obs, dict) else obs


@pytest.mark.parametrize("env_id", ENVS)
def test_check_env_passes_on_short_episodes(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(env_id, **SHORT[env_id]).unwrapped)


@pytest.mark.parametrize("env_id", ENVS)
@pytest.mark.parametrize("action", [1.5, 1.0, np.float32(2.0), np.nan, True, np.bool_(False),
                                    "1", [1], None])
def test_single_env_refuses_actions_that_are_not_one_integer(env_id, action):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="action must be an integer"):
        env.step(action)


@pytest.mark.parametrize("env_id", ENVS)
def test_single_env_takes_python_and_numpy_integers(env_id):
    env = gym.make(env_id).unwrapped
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for kind in (int, np.int32, np.int64, np.uint8, np.array):
        obs, reward, term, trunc, _ = env.step(kind(random_allowed(env, obs, rng)))
        assert np.isfinite(reward)
        if term or trunc:
            obs, _ = env.reset()


@pytest.mark.parametrize("env_id", ENVS)
def test_step_before_reset_or_after_the_end_is_a_clear_error(env_id):
    env = gym.make(env_id, **SHORT[env_id]).unwrapped
    with pytest.raises(InvalidActionError, match="reset"):
        env.step(0)
    obs, _ = env.reset(seed=0)
    rng, done, steps = np.random.default_rng(0), False, 0
    while not done:
        obs, _, term, trunc, _ = env.step(int(random_allowed(env, obs, rng)))
        done, steps = term or trunc, steps + 1
        assert steps <= 10, "a short episode did not end"
    with pytest.raises(InvalidActionError, match="reset"):
        env.step(int(random_allowed(env, obs, rng)))
    obs, _ = env.reset()
    env.step(int(random_allowed(env, obs, rng)))


@pytest.mark.parametrize("env_id", ENVS)
def test_vector_env_takes_numpy_int_arrays_and_refuses_floats(env_id):
    env = vec(env_id, 4)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for dtype in (np.int64, np.int32, np.int8):
        obs, *_ = env.step(random_allowed(env, obs, rng).astype(dtype))
    with pytest.raises(InvalidActionError):
        env.step(random_allowed(env, obs, rng).astype(np.float64))
    with pytest.raises(InvalidActionError):
        env.step(np.zeros(5, dtype=np.int64))  # one action too many


def _obs_after(env_id, resets, steps=3):
    env = vec(env_id, 8)
    rng = np.random.default_rng(0)
    for seed in resets:
        obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        obs, *_ = env.step(random_allowed(env, obs, rng))
    return first_obs_array(obs)


@pytest.mark.parametrize("env_id", ENVS)
def test_seeded_then_unseeded_vector_resets_are_reproducible(env_id):
    np.testing.assert_array_equal(_obs_after(env_id, [11, None]), _obs_after(env_id, [11, None]))
    assert not np.array_equal(_obs_after(env_id, [11, None]), _obs_after(env_id, [11]))


def _continue(env, obs, steps, seed):
    """Observations and rewards of `steps` steps of random allowed actions."""
    rng, out = np.random.default_rng(seed), []
    for _ in range(steps):
        obs, reward, term, trunc, _ = env.step(random_allowed(env, obs, rng))
        out += [first_obs_array(obs).copy(), reward.copy(), term.copy(), trunc.copy()]
    return out


def _run_to_state(env_id, **kwargs):
    env = vec(env_id, 8, **kwargs)
    obs, _ = env.reset(seed=2)
    rng = np.random.default_rng(1)
    for _ in range(25):  # past some episode ends and autoresets with the short configs
        obs, *_ = env.step(random_allowed(env, obs, rng))
    return env, obs


@pytest.mark.parametrize("env_id", ENVS)
@pytest.mark.parametrize("short", [False, True])
def test_state_round_trip_continues_bit_for_bit(env_id, short):
    env, obs = _run_to_state(env_id, **(SHORT[env_id] if short else {}))
    state = env.get_state()
    first = _continue(env, obs, 20, seed=3)
    restored = env.set_state(state)
    np.testing.assert_array_equal(first_obs_array(restored), first_obs_array(obs))
    for a, b in zip(first, _continue(env, restored, 20, seed=3), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("env_id", ENVS)
def test_state_survives_a_weights_only_checkpoint_into_a_fresh_env(env_id, tmp_path):
    env, obs = _run_to_state(env_id)
    save_checkpoint(tmp_path / "c.pt", {"env": env.get_state()})
    torch.load(tmp_path / "c.pt", weights_only=True)  # no pickled objects
    first = _continue(env, obs, 15, seed=4)
    fresh = vec(env_id, 8)  # never reset: set_state alone must rebuild every array
    restored = fresh.set_state(load_checkpoint(tmp_path / "c.pt")["env"])
    for a, b in zip(first, _continue(fresh, restored, 15, seed=4), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="8 slots"):
        vec(env_id, 4).set_state(env.get_state())


@pytest.mark.parametrize("env_id", ENVS)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_direct_configs_refuse_non_finite_numbers_by_name(env_id, value):
    field = FLOAT_FIELD[env_id]
    with pytest.raises(ConfigError, match=f"{field} must be a finite number"):
        CONFIGS[env_id](**{field: value}).validate()
    with pytest.raises(ConfigError, match=field):
        gym.make(env_id, **{field: value})


@pytest.mark.parametrize("env_id", ENVS)
def test_unknown_config_key_is_refused_with_a_suggestion(env_id):
    field = FLOAT_FIELD[env_id]
    with pytest.raises(ConfigError, match=f"unknown config key '{field}s'.*{field}"):
        gym.make(env_id, **{f"{field}s": 1.0})


def _small_run(env_id):
    from liveq.train import load_run_config

    return load_run_config({
        "seed": 3, "env": {"id": env_id, "n_envs": 4, "kwargs": SHORT[env_id]},
        "agent": {"name": "dqn", "dqn": {"learning_starts": 64, "batch_size": 16,
                                         "train_freq": 8, "hidden_sizes": [16]}},
        "train": {"total_env_steps": 480, "eval_every": 120, "eval_episodes": 2,
                  "checkpoint_every": 240, "log_every": 120, "progress": False}})


@pytest.mark.parametrize("env_id", ENVS)
def test_training_resumes_bitwise_on_the_scenario(env_id, tmp_path):
    """A run cut after its mid-way checkpoint and resumed ends with the uninterrupted run's
    weights exactly (the env state travels in the checkpoint; no reset on resume)."""
    from liveq.train.loop import train

    def evaluate(policy, n_episodes, seed):
        return {"return": 0.0}

    calls = []

    def crash_after_checkpoint(policy, n_episodes, seed):
        calls.append(seed)
        if len(calls) == 3:  # evaluations at 120, 240 (then the checkpoint), 360
            raise KeyboardInterrupt
        return evaluate(policy, n_episodes, seed)

    train(_small_run(env_id), tmp_path / "whole", evaluate=evaluate)
    with pytest.raises(KeyboardInterrupt):
        train(_small_run(env_id), tmp_path / "cut", evaluate=crash_after_checkpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an env without get_state warns on resume
        train(_small_run(env_id), tmp_path / "cut", resume=True, evaluate=evaluate)
    whole, cut = (torch.load(tmp_path / run / "checkpoints" / "latest.pt",
                             weights_only=True)["agent"] for run in ("whole", "cut"))
    _assert_same(whole, cut)


def _assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


FIXED_LENGTH = {  # configs whose every episode lasts exactly 3 counted steps
    ADS: {"day_minutes": 15.0, "mean_session_minutes": 1e6, "leave_base": 0.0,
          "leave_per_ad": 0.0},
    SHOP: {"max_session_steps": 3, "patience": 1e6},
    ROOM: {"max_minutes": 3, "leave_rate": 0.0, "annoyance_leave": 0.0}}


@pytest.mark.parametrize("env_id", ENVS)
def test_every_autoreset_episode_is_as_long_as_the_single_envs(env_id):
    """NEXT_STEP autoreset: the step after an end only starts the next episode (nothing of
    it is played), so later episodes in the vector env last as long as a fresh single env's
    (a core that played the new episode's first step in the reset step would give 2)."""
    single = gym.make(env_id, **FIXED_LENGTH[env_id]).unwrapped
    obs, _ = single.reset(seed=0)
    rng, steps, done = np.random.default_rng(0), 0, False
    while not done:
        obs, _, term, trunc, _ = single.step(int(random_allowed(single, obs, rng)))
        steps, done = steps + 1, term or trunc
    assert steps == 3
    env = vec(env_id, 4, **FIXED_LENGTH[env_id])
    obs, _ = env.reset(seed=0)
    counted, restarting, lengths = np.zeros(4), np.zeros(4, dtype=bool), []
    for _ in range(20):
        obs, _, term, trunc, _ = env.step(random_allowed(env, obs, rng))
        counted += ~restarting
        ended = term | trunc
        lengths += counted[ended].tolist()
        counted[ended] = 0
        restarting = ended
    assert len(lengths) >= 16 and set(lengths) == {3}
