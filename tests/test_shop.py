"""liveq/Ecommerce-v0: the env bar, the funnel and the stock, worked by hand where small."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import liveq  # noqa: F401  (registers the envs)
from liveq.core.config import ConfigError
from liveq.sim.shop import EcommerceConfig, EcommerceEnv, EcommerceVectorEnv, ShopCore

SMALL = {"n_products": 60, "n_candidates": 8, "stock_mean": 4.0}


@pytest.mark.parametrize("kwargs", [{}, SMALL, {"invalid_action": "empty", "n_products": 10,
                                                "stock_mean": 1.0, "restock_prob": 0.0}])
def test_check_env_passes_without_warnings(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make("liveq/Ecommerce-v0", **kwargs).unwrapped)


def rollout(env, steps, seed):
    """Per step (candidates, reward, terminated, truncated). The single env's `reset()`
    after an end stands for the vector env's autoreset step (reward 0, action ignored)."""
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    trace, ended = [], False
    for _ in range(steps):
        scores = np.where(obs["mask"].astype(bool), rng.random(obs["mask"].shape), -1)
        if isinstance(env, EcommerceEnv) and ended:
            (obs, _), reward, term, trunc = env.reset(), 0.0, False, False
        else:
            obs, reward, term, trunc, _ = env.step(np.argmax(scores, axis=-1))
        trace.append((obs["candidates"].copy(), np.copy(reward), np.copy(term), np.copy(trunc)))
        ended = bool(np.any(term) or np.any(trunc))
    return trace


def same(a, b) -> bool:
    return all(np.array_equal(np.squeeze(x), np.squeeze(y)) for p, q in zip(a, b, strict=True)
               for x, y in zip(p, q, strict=True))


def test_same_seed_same_trajectory_and_vector_equals_single():
    one = rollout(EcommerceEnv(**SMALL), 120, seed=3)
    assert same(one, rollout(EcommerceEnv(**SMALL), 120, seed=3))
    assert not same(one, rollout(EcommerceEnv(**SMALL), 120, seed=4))
    assert any(t or u for _, _, t, u in one)  # sessions ended and restarted
    vec = gym.make_vec("liveq/Ecommerce-v0", num_envs=1,
                       vectorization_mode="vector_entry_point", **SMALL)
    assert isinstance(vec.unwrapped, EcommerceVectorEnv)
    assert same(one, rollout(vec, 120, seed=3))


def test_funnel_is_ordered_and_stock_never_negative():
    env = EcommerceVectorEnv(64, **SMALL)
    obs, _ = env.reset(seed=0)
    counts, sold_out = np.zeros(4), False
    rng = np.random.default_rng(1)
    for _ in range(300):
        scores = np.where(obs["mask"].astype(bool), rng.random(obs["mask"].shape), -1)
        obs, _, _, _, info = env.step(np.argmax(scores, axis=1))
        counts += [(info["product_id"] >= 0).sum(), info["click"].sum(), info["cart"].sum(),
                   info["purchase"].sum()]
        assert (env.core.stock >= 0).all()
        sold_out |= bool((env.core.stock == 0).any())
        assert not (info["purchase"] & ~info["cart"]).any()
        assert not (info["cart"] & ~info["click"]).any()
    shown, clicks, carts, buys = counts
    assert shown > clicks > carts > buys > 0
    assert sold_out  # scarce stock runs out (and the test above would see it go below 0)


def test_purchase_needs_a_click_and_pays_the_price():
    """By hand: a certain click, cart and purchase pays exactly the price; with clicks made
    impossible nothing is carted, bought or paid."""
    sure = EcommerceConfig(n_products=5, n_candidates=5, click_bias=40.0, cart_bias=40.0,
                           purchase_prob=1.0, price_sensitivity=0.0, budget_log_mean=20.0)
    core = ShopCore(sure, 1)
    core.reset(0)
    pid = int(core.candidates[0, 2])
    stock, price = int(core.stock[pid]), float(core.price[pid])
    _, reward, _, _, info = core.step(np.array([2]))
    assert info["click"][0] and info["cart"][0] and info["purchase"][0]
    assert reward[0] == pytest.approx(price)
    assert core.stock[pid] == stock - 1
    never = EcommerceConfig(n_products=5, n_candidates=5, click_bias=-40.0, cart_bias=40.0,
                            purchase_prob=1.0)
    core = ShopCore(never, 1)
    core.reset(0)
    _, reward, _, _, info = core.step(np.array([0]))
    assert not (info["click"][0] or info["cart"][0] or info["purchase"][0])
    assert reward[0] == 0.0


def test_last_unit_goes_to_one_shopper_only():
    cfg = EcommerceConfig(n_products=1, n_candidates=1, click_bias=40.0, cart_bias=40.0,
                          purchase_prob=1.0, price_sensitivity=0.0, budget_log_mean=20.0,
                          restock_prob=0.0, new_item_rate=0.0)
    core = ShopCore(cfg, 4)
    core.reset(0)
    core.stock[0] = 1
    _, _, _, _, info = core.step(np.zeros(4, dtype=np.int64))
    assert info["purchase"].tolist() == [True, False, False, False]
    assert core.stock[0] == 0 and core.mask().sum() == 0


def test_fatigue_lowers_the_click_chance_by_hand():
    """All logits 0 but fatigue: p(click) = sigmoid(0) = 1/2 fresh, and sigmoid(-ln 3) = 1/4
    after one unit of exposure with fatigue_weight ln 3."""
    cfg = EcommerceConfig(n_products=20, n_candidates=5, taste_sd=0.0, quality_sd=0.0,
                          price_log_sd=0.0, click_bias=0.0, fatigue_weight=float(np.log(3.0)))
    rates = []
    for exposure in (0.0, 1.0):
        core = ShopCore(cfg, 20_000)
        core.reset(0)
        core.fatigue[:] = exposure
        rates.append(core.step(np.zeros(20_000, dtype=np.int64))[4]["click"].mean())
    assert rates[0] == pytest.approx(0.5, abs=0.015)
    assert rates[1] == pytest.approx(0.25, abs=0.015)


@pytest.mark.parametrize("field,value", [("n_products", 0), ("purchase_prob", 1.5),
                                         ("fatigue_decay", 1.0), ("patience", 0.0),
                                         ("price_log_sd", float("nan"))])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        gym.make("liveq/Ecommerce-v0", **{field: value})


def test_masked_action_raises_or_shows_nothing():
    from liveq.core.errors import InvalidActionError
    core = ShopCore(EcommerceConfig(n_products=5, n_candidates=5), 1)
    core.reset(0)
    core.stock[core.candidates[0, 1]] = 0
    with pytest.raises(InvalidActionError):
        core.step(np.array([1]))
    core = ShopCore(EcommerceConfig(n_products=5, n_candidates=5, invalid_action="empty"), 1)
    core.reset(0)
    core.stock[core.candidates[0, 1]] = 0
    assert core.step(np.array([1]))[4]["product_id"][0] == -1


def test_synthetic_log_round_trips_through_the_generic_loader(tmp_path):
    from liveq.data.generic import load_generic
    from liveq.data.shop_logs import simulate_shop_rows, write_shop_log

    kwargs = {"config": EcommerceConfig(**SMALL), "sessions": 32, "steps": 60, "seed": 2}
    raw = simulate_shop_rows(**kwargs)
    schema = write_shop_log(tmp_path / "shop.csv", **kwargs)
    log = load_generic(tmp_path / "shop.csv", schema)
    assert log.frame.height == raw.height > 0
    assert log.frame["value"].sum() == pytest.approx(float(raw["value"].sum()), rel=1e-5)
    assert (raw["value"] > 0).sum() < raw.height  # some clicks were not bought
    assert ((raw["propensity"] > 0) & (raw["propensity"] <= 1)).all()


def test_cf_baseline_falls_back_to_popular_then_uses_clicks():
    from liveq.policies.shop import SHOP_BASELINES, most_sold_score

    env = EcommerceVectorEnv(8, **SMALL)
    cf = SHOP_BASELINES["cf"](env, 0)
    obs, _ = env.reset(seed=0)
    popular = np.where(obs["mask"].astype(bool), most_sold_score(obs), -np.inf)
    np.testing.assert_array_equal(cf.scores(obs), popular)  # no clicks yet
    for _ in range(10):
        obs, _, _, _, _ = env.step(cf.act(obs).actions)
    clicked = (env.core.clicked_items >= 0).any(axis=1)
    assert clicked.any()
    popular = np.where(obs["mask"].astype(bool), most_sold_score(obs), -np.inf)
    assert not np.array_equal(cf.scores(obs)[clicked], popular[clicked])


def test_compare_runs_the_shop_baselines(tmp_path, capsys):
    from liveq.cli.main import main

    assert main(["compare", "--config", "shop_small", "--agents", "popular,rating,random",
                 "--episodes", "32", "--out", str(tmp_path), "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "popular" in table and "rating" in table and "return/session" in table


def test_every_shop_field_has_a_docstring():
    from liveq.cli.reference import field_docs
    from liveq.sim.shop import ShopRewards

    for cls in (EcommerceConfig, ShopRewards):
        docs = field_docs(cls)
        assert not [name for name in cls.__dataclass_fields__ if not docs.get(name)]


def test_data_synth_writes_a_shop_log_the_generic_loader_reads(tmp_path, capsys):
    from liveq.cli.main import main
    from liveq.data.generic import load_generic

    out = tmp_path / "shop.csv"
    assert main(["data", "synth", "--config", "shop_small", "--format", "generic", "--out",
                 str(out), "--sessions", "16", "--days", "0.05"]) == 0
    assert "72 steps of 1 min" in capsys.readouterr().out
    assert load_generic(out, tmp_path / "shop.schema.yaml").frame.height > 0


def test_bench_times_the_shop_at_each_batch():
    from liveq.experiments.bench_scenarios import bench_scenarios

    figures = bench_scenarios(quick=True, repeats=1, say=lambda _text: None)
    rows = figures["liveq/Ecommerce-v0"]
    assert [r["batch"] for r in rows] == [1, 100]
    assert all(r["steps_per_s"] > 0 for r in rows)
