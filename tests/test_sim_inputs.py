"""Bad inputs to the simulator end in clear errors; seeding and resources follow Gymnasium."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

import liveq.sim.parallel
from liveq.core.errors import ConfigError, InvalidActionError
from liveq.sim import memory
from liveq.sim.config import LiveStreamConfig, StreamerTraits
from liveq.sim.livestream import LiveStreamEnv, LiveStreamVectorEnv, SlateSpace

SMALL = {"n_streamers": 60, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2}


@pytest.mark.parametrize("action", [1.5, 1.0, np.float32(2.0), np.nan, True, np.bool_(False),
                                    "1", [1], None])
def test_single_env_refuses_actions_that_are_not_one_integer(action):
    env = LiveStreamEnv(**SMALL)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="action must be an integer"):
        env.step(action)


def test_single_env_takes_python_and_numpy_integers():
    env = LiveStreamEnv(**SMALL)
    obs, _ = env.reset(seed=0)
    for kind in (int, np.int32, np.int64, np.uint8, np.array):
        obs, _, term, trunc, _ = env.step(kind(np.argmax(obs["mask"])))
        if term or trunc:
            obs, _ = env.reset()


def test_slates_refuse_repeats_and_floats():
    env = LiveStreamEnv(**SMALL, slate_size=3)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="candidate 0 is repeated"):
        env.step(np.array([0, 0, 1]))
    with pytest.raises(InvalidActionError, match=r"integers of shape \(3,\)"):
        env.step(np.array([0.0, 1.0, 2.0]))
    assert not env.action_space.contains(np.array([2, 2, 1]))
    assert isinstance(env.action_space, SlateSpace)
    env.action_space.seed(0)
    for _ in range(200):
        assert len(set(env.action_space.sample().tolist())) == 3


def test_empty_mode_leaves_a_repeat_empty():
    env = LiveStreamVectorEnv(2, invalid_action="empty", **SMALL, slate_size=2)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([[0, 0], [1, 1]]))
    assert (info["shown_ids"][:, 1] == -1).all() and (info["shown_ids"][:, 0] >= 0).all()


def test_step_after_the_end_or_before_reset_is_a_clear_error():
    env = LiveStreamEnv(**SMALL, max_session_steps=3)
    with pytest.raises(InvalidActionError, match="reset"):
        env.step(0)
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        obs, _, term, trunc, _ = env.step(int(np.argmax(obs["mask"])))
        done = term or trunc
    with pytest.raises(InvalidActionError, match="session has ended"):
        env.step(int(np.argmax(obs["mask"])))
    obs, _ = env.reset()
    env.step(int(np.argmax(obs["mask"])))


def test_vector_env_takes_numpy_int_arrays_and_refuses_floats():
    env = LiveStreamVectorEnv(4, **SMALL)
    obs, _ = env.reset(seed=0)
    for dtype in (np.int64, np.int32, np.int8):
        obs, *_ = env.step(np.argmax(obs["mask"], axis=1).astype(dtype))
    with pytest.raises(InvalidActionError, match="must be integers"):
        env.step(np.argmax(obs["mask"], axis=1).astype(np.float64))


# ------------------------------------------------------------------ seeding


def _candidates_after(env, resets):
    obs = None
    for seed in resets:
        obs, _ = env.reset(seed=seed)
    for _ in range(3):
        obs, *_ = env.step(np.argmax(obs["mask"], axis=-1))
    return obs["candidates"]


def test_seeded_then_unseeded_vector_resets_are_reproducible():
    a = _candidates_after(LiveStreamVectorEnv(8, **SMALL), [11, None])
    b = _candidates_after(LiveStreamVectorEnv(8, **SMALL), [11, None])
    np.testing.assert_array_equal(a, b)
    first = _candidates_after(LiveStreamVectorEnv(8, **SMALL), [11])
    assert not np.array_equal(a, first)  # the unseeded reset built a new world


def test_seeded_reset_gives_the_world_its_seed_always_gave():
    """`reset(seed=s)` draws the world seed as before the Gymnasium fix: the same worlds."""
    env = LiveStreamVectorEnv(4, **SMALL)
    env.reset(seed=3)
    world_seed = int(np.random.default_rng(np.random.SeedSequence(3)).integers(2**63))
    assert env.core.start_clock == int(np.random.default_rng(
        np.random.SeedSequence(world_seed)).integers(0, 1440))


def test_no_world_is_built_before_the_first_reset(monkeypatch):
    from liveq.sim import core as core_module
    built = []
    monkeypatch.setattr(core_module, "Streamers", lambda *a: built.append(a) or pytest.fail())
    env = LiveStreamVectorEnv(4, **SMALL)
    LiveStreamEnv(**SMALL)
    assert env.core.rng is None and not built


# ------------------------------------------------------------------ resources


def test_the_core_owns_and_closes_its_thread_pool(monkeypatch):
    monkeypatch.setattr(liveq.sim.parallel, "MIN_ROWS", 8)
    monkeypatch.setattr(liveq.sim.parallel.os, "cpu_count", lambda: 4)  # even on one CPU
    assert not hasattr(liveq.sim.parallel, "_pool")  # no process-wide pool
    env = LiveStreamVectorEnv(32, **SMALL, sim_threads=2)
    env.reset(seed=0)
    assert env.core.pool.workers == 2 and env.core.pool._pool is not None
    threads = {t for t in threading.enumerate() if t.name.startswith("liveq-sim")}
    assert threads
    env.close()
    assert env.core.pool._pool is None
    assert not any(t.is_alive() for t in threads)


def test_sim_threads_does_not_change_results(monkeypatch):
    monkeypatch.setattr(liveq.sim.parallel, "MIN_ROWS", 8)
    one = _candidates_after(LiveStreamVectorEnv(32, **SMALL, sim_threads=1), [5])
    two = _candidates_after(LiveStreamVectorEnv(32, **SMALL, sim_threads=2), [5])
    np.testing.assert_array_equal(one, two)


# ------------------------------------------------------------------ configs


def test_sizes_that_cannot_fit_are_refused_with_the_estimate():
    with pytest.raises(ConfigError, match=r"n_streamers=1,000,000,000 .* need about "
                                          r"[\d,.]+ GiB .* available"):
        LiveStreamVectorEnv(1, n_streamers=10**9)
    with pytest.raises(ConfigError, match="n_envs"):
        LiveStreamVectorEnv(10**9)


def test_the_estimate_counts_every_big_array():
    cfg = LiveStreamConfig()
    env = LiveStreamVectorEnv(64, config=cfg)
    env.reset(seed=0)
    s, v = env.core.streamers, env.core.viewers
    state = sum(a.nbytes for a in vars(s).values() if isinstance(a, np.ndarray))
    tables = env.core.topics.nbytes + env.core.stats.nbytes
    assert memory.streamer_bytes(cfg) * cfg.n_streamers == pytest.approx(state + tables, rel=0.01)
    viewers = sum(a.nbytes for a in vars(v).values() if isinstance(a, np.ndarray))
    assert memory.session_bytes(cfg) * 64 > viewers


def test_codec_ring_too_big_is_refused():
    env = LiveStreamVectorEnv(1, n_streamers=100_000)
    with pytest.raises(ConfigError, match="replay ring"):
        env.make_replay_codec(10**9)


@pytest.mark.parametrize("field", ["step_cost", "match_weight", "return_bias", "clickbait_gap"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_direct_configs_refuse_non_finite_numbers_by_name(field, value):
    with pytest.raises(ConfigError, match=f"{field} must be a finite number"):
        LiveStreamConfig(**{field: value}).validate()


def test_nested_config_errors_name_the_path():
    bad = LiveStreamConfig(streamer_traits=StreamerTraits(quality_sd=float("nan")))
    with pytest.raises(ConfigError, match="streamer_traits.quality_sd must be a finite"):
        bad.validate()
    bad = dataclasses.replace(LiveStreamConfig(), rewards=dataclasses.replace(
        LiveStreamConfig().rewards, gift=float("inf")))
    with pytest.raises(ConfigError, match="rewards.gift must be a finite"):
        bad.validate()
    with pytest.raises(ConfigError, match="viewer_traits.veteran_picks"):
        LiveStreamEnv(viewer_traits={"veteran_picks": 30})
    with pytest.raises(ConfigError, match="sim_threads must be at least 1"):
        LiveStreamEnv(sim_threads=0)
    with pytest.raises(ConfigError, match="organic_audience must be positive"):
        LiveStreamEnv(organic_audience=0.0)


def test_behaviour_constants_are_config_fields_that_change_the_world():
    from liveq.core.config import from_dict, to_dict
    cfg = LiveStreamConfig()
    assert from_dict(LiveStreamConfig, to_dict(cfg)) == cfg
    base = _candidates_after(LiveStreamVectorEnv(8, **SMALL), [1])
    for change in ({"watch_slope": 1.0}, {"streamer_traits": {"quality_sd": 1.5}},
                   {"viewer_traits": {"veteran_picks": 1}}):
        other = _candidates_after(LiveStreamVectorEnv(8, **SMALL, **change), [1])
        assert not np.array_equal(base, other), change


def test_a_warm_up_that_would_never_finish_is_refused():
    from liveq.core.config import from_dict
    from liveq.core.errors import ConfigError
    from liveq.sim.config import LiveStreamConfig

    with pytest.raises(ConfigError, match=r"warmup_hours 1e\+09 .* warm-up steps, more than"):
        from_dict(LiveStreamConfig, {"warmup_hours": 1e9})
    with pytest.raises(ConfigError, match="raise step_minutes"):
        from_dict(LiveStreamConfig, {"step_minutes": 1e-6})


@pytest.mark.parametrize("slate_size", [1, 3])
def test_ranks_no_live_candidate_can_fill_show_nothing_even_in_error_mode(slate_size):
    """At quiet hours a session may have fewer live candidates than ranks, or none: no
    action can be valid there, so those ranks show nothing instead of raising."""
    env = LiveStreamVectorEnv(4, **SMALL, slate_size=slate_size)
    env.reset(seed=0)
    core = env.core
    core.cand_ids[0] = -1  # session 0: nothing live
    core.cand_ids[1, 1:] = -1  # session 1: one live candidate
    core.mask = core.cand_ids >= 0
    actions = np.zeros((4, slate_size), np.int64) if slate_size > 1 else np.zeros(4, np.int64)
    if slate_size > 1:
        actions[:] = np.arange(slate_size)
    positions = core.check_actions(actions)
    assert (positions[0] == -1).all()
    assert positions[1, 0] == 0 and (positions[1, 1:] == -1).all()
    core.cand_ids[2, 0] = -1  # a live row naming a masked candidate is still an error
    core.mask = core.cand_ids >= 0
    with pytest.raises(InvalidActionError):
        core.check_actions(actions)
    env.close()
