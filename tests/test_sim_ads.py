"""liveq/AdPlacement-v0: the env test bar, masks, budgets, fatigue, config errors, baselines."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import liveq  # noqa: F401
from liveq.core.errors import ConfigError, InvalidActionError
from liveq.policies.ads import AD_BASELINES
from liveq.sim.ads_config import AdPlacementConfig
from liveq.sim.ads_core import AdPlacementCore


def _vec(n=1, **kw):
    return gym.make_vec("liveq/AdPlacement-v0", num_envs=n,
                        vectorization_mode="vector_entry_point", **kw)


def test_check_env_with_warnings_as_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make("liveq/AdPlacement-v0").unwrapped)


def _trajectory(env, seed, steps=60):
    obs, _ = env.reset(seed=seed)
    rng, out = np.random.default_rng(0), [obs]
    for _ in range(steps):
        obs, reward, term, _, _ = env.step(np.int64(rng.integers(env.action_space.n)))
        out += [obs, reward]
        if term:
            break
    return out


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return np.array_equal(a, b)


def test_same_seed_same_trajectory_and_different_seed_differs():
    a = _trajectory(gym.make("liveq/AdPlacement-v0"), 3)
    b = _trajectory(gym.make("liveq/AdPlacement-v0"), 3)
    c = _trajectory(gym.make("liveq/AdPlacement-v0"), 4)
    assert all(_same(x, y) for x, y in zip(a, b, strict=True))
    assert not _same(a[0], c[0])


def test_vector_equals_single_for_a_batch_of_one():
    single, vec = gym.make("liveq/AdPlacement-v0").unwrapped, _vec(1)
    o1, _ = single.reset(seed=7)
    o2, _ = vec.reset(seed=7)
    assert _same(o1, {k: v[0] for k, v in o2.items()})
    for t in range(40):
        a = t % (single.config.n_campaigns + 1)
        o1, r1, d1, _, _ = single.step(np.int64(a))
        o2, r2, d2, _, _ = vec.step(np.array([a]))
        assert _same(o1, {k: v[0] for k, v in o2.items()})
        assert r1 == r2[0] and d1 == d2[0]


def test_observation_rows_are_the_campaigns_then_no_ad():
    env = _vec(4)
    obs, _ = env.reset(seed=0)
    core, c = env.unwrapped.core, env.unwrapped.config.n_campaigns
    np.testing.assert_array_equal(obs["mask"], core.mask())
    np.testing.assert_allclose(obs["candidates"][:, :c, 3], core.relevance(), rtol=1e-6)
    np.testing.assert_allclose(obs["candidates"][:, :c, 2], core.bid / 1.0, rtol=1e-6)
    np.testing.assert_array_equal(obs["candidates"][:, c], [[0, 0, 0, 0, 1]] * 4)
    assert (obs["candidates"][:, :c, 4] == 0).all()


def test_masked_action_raises_or_shows_no_ad():
    env = _vec(1, invalid_action="raise")
    env.reset(seed=0)
    core = env.unwrapped.core
    core.target[0, 0, :] = False  # campaign 0 now targets nobody
    with pytest.raises(InvalidActionError, match="masked campaign"):
        env.step(np.array([0]))
    soft = _vec(1)
    soft.reset(seed=0)
    soft.unwrapped.core.target[0, 0, :] = False
    _, _, _, _, info = soft.step(np.array([0]))
    assert info["impressions"][0] == 0.0
    with pytest.raises(InvalidActionError):
        soft.step(np.array([0.5]))


def test_budget_runs_out_and_is_never_overspent():
    # by hand: budget 1.5, bid 1.0, every ad clicked -> pays 1.0 then 0.5 then nothing
    cfg = AdPlacementConfig(n_campaigns=1, budget_mean=1.5, bid_mean=1.0, ctr_base=50.0,
                            leave_base=0.0, leave_per_ad=0.0, targeting_share=1.0)
    core = AdPlacementCore(cfg, 1)
    core.reset(0)
    core.budget[:] = 1.5
    core.bid[:] = 1.0
    paid = [core.step(np.array([0]))[4]["revenue"][0] for _ in range(2)]
    assert paid == [1.0, 0.5]
    assert not core.mask()[0, 0] and core.mask()[0, 1]
    assert core.step(np.array([0]))[4]["revenue"][0] == 0.0  # masked -> no ad, no spend
    env = _vec(32)
    obs, _ = env.reset(seed=1)
    policy = AD_BASELINES["greedy_ecpm"](env, 0)
    for _ in range(200):
        obs, *_ = env.step(policy.act(obs).actions)
        assert (env.unwrapped.core.spent <= env.unwrapped.core.budget + 1e-12).all()


def test_fatigue_raises_leaving():
    def leave_rate(action):
        env = _vec(256, budget_mean=1e6)
        env.reset(seed=2)
        left = 0.0
        for _ in range(20):
            left += env.step(np.full(256, action))[4]["left"].mean()
        return left / 20

    no_ads, all_ads = leave_rate(5), leave_rate(0)
    assert no_ads < 0.04 < 0.1 < all_ads


@pytest.mark.parametrize("field,value", [("n_campaigns", 0), ("fatigue_decay", 1.5),
                                         ("bid_mean", -1.0), ("invalid_action", "skip")])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        gym.make("liveq/AdPlacement-v0", **{field: value})


@pytest.mark.parametrize("name", sorted(AD_BASELINES))
def test_baselines_run_and_respect_masks(name):
    env = _vec(16)
    obs, _ = env.reset(seed=5)
    policy = AD_BASELINES[name](env, 0)
    total = np.zeros(16)
    for _ in range(150):
        act = policy.act(obs)
        assert policy.allowed(obs)[np.arange(16), act.actions].all()
        np.testing.assert_allclose(policy.probabilities(obs).sum(axis=1), 1.0)
        obs, reward, *_ = env.step(act.actions)
        total += reward
    assert np.isfinite(total).all() and total.mean() > 0


def test_every_ad_config_field_has_a_docstring():
    from liveq.cli.reference import field_docs

    docs = field_docs(AdPlacementConfig)
    assert not [name for name in AdPlacementConfig.__dataclass_fields__ if not docs.get(name)]


def test_compare_refuses_ad_baselines_on_livestream(capsys):
    from liveq.cli.main import main

    code = main(["compare", "--config", "livestream_small", "--agents", "greedy_ecpm",
                 "--episodes", "8", "--out", "/tmp/liveq_ads_refuse"])
    assert code == 2 and "liveq/AdPlacement" in capsys.readouterr().err


def test_bench_times_every_scenario_env_at_each_batch():
    from liveq.experiments.bench_scenarios import QUICK_CASES, SCENARIO_ENVS, bench_scenarios

    figures = bench_scenarios(True, 1, lambda _text: None)
    assert set(figures) == set(SCENARIO_ENVS) >= {"liveq/AdPlacement-v0", "liveq/LiveRoom-v0"}
    rows = figures["liveq/AdPlacement-v0"]
    assert [r["batch"] for r in rows] == [b for b, _ in QUICK_CASES]
    assert all(r["steps_per_s"] > 0 for r in rows)
