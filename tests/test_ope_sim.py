"""Simulator proof: exact propensities and truth, estimators near the truth, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liveq.cli.main import main
from liveq.core.config import ConfigError
from liveq.core.errors import UsageError
from liveq.experiments.ope_sim import (
    ENV_ID,
    PolicySpec,
    SimOPEConfig,
    action_distribution,
    collect_log,
    parse_policy,
    run_sim,
)
from liveq.ope.estimators import EstimatorConfig
from liveq.policies.baselines import make_baseline
from liveq.policies.explore import EpsilonGreedy
from liveq.sim.vector import make_vec_env

SMALL_WORLD = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2}


def small_config(**changes) -> SimOPEConfig:
    base = dict(seeds=2, sessions=256, steps=16, estimators=EstimatorConfig(n_boot=50))
    return SimOPEConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def result():
    return run_sim(small_config(), seed=0)


def test_parse_policy():
    assert parse_policy("popular:0.3") == PolicySpec("popular", 0.3)
    assert parse_policy("oracle") == PolicySpec("oracle", 0.0)
    with pytest.raises(ConfigError, match="unknown policy 'greedy'"):
        parse_policy("greedy")
    with pytest.raises(ConfigError, match="epsilon must be in"):
        parse_policy("random:1.5")
    with pytest.raises(ConfigError, match="not a number"):
        parse_policy("popular:lots")


def test_action_distributions_match_the_policies():
    env = make_vec_env(ENV_ID, 64, kwargs=SMALL_WORLD)
    obs, _ = env.reset(seed=1)
    mask = obs["mask"].astype(bool)
    popular = make_baseline("popular", env)
    greedy = popular.act(obs).actions
    one_hot = action_distribution(popular, obs)
    assert np.array_equal(one_hot.argmax(axis=1), greedy) and np.all(one_hot.sum(axis=1) == 1)
    uniform = action_distribution(make_baseline("random", env, 0), obs)
    np.testing.assert_allclose(uniform, mask / mask.sum(axis=1, keepdims=True))
    mixed = EpsilonGreedy(popular, 0.3, np.random.default_rng(2))
    dist = action_distribution(mixed, obs)
    np.testing.assert_allclose(dist, 0.3 * uniform + 0.7 * one_hot)
    chosen = mixed.act(obs)
    rows = np.arange(64)
    np.testing.assert_allclose(chosen.propensities, dist[rows, chosen.actions])
    assert mask[rows, chosen.actions].all()


def test_slate_policies_are_refused_with_a_usage_error():
    env = make_vec_env(ENV_ID, 4, kwargs={**SMALL_WORLD, "slate_size": 2})
    obs, _ = env.reset(seed=0)
    with pytest.raises(UsageError, match="recommends slates of 2"):
        action_distribution(make_baseline("popular", env), obs)
    env.close()


def test_log_has_exact_propensities_and_a_truth_the_rewards_agree_with():
    log = collect_log(small_config(env=SMALL_WORLD), seed=3)
    rows = np.arange(len(log.action))
    np.testing.assert_allclose(log.pscore, log.behaviour_dist[rows, log.action])
    assert log.mask[rows, log.action].all()
    expected = log.q_true[rows, log.action]
    gap = log.reward.mean() - expected.mean()
    assert abs(gap) < 4 * (log.reward - expected).std() / np.sqrt(len(rows))
    for dist in log.target_dists.values():
        np.testing.assert_allclose(dist.sum(axis=1), 1.0)
        assert np.all(dist[~log.mask] == 0)


def test_unbiased_estimators_land_near_the_truth(result):
    summary = {(r["target"], r["estimator"]): r for r in result["summary"]}
    for target in ("repeat", "popular:0.1", "random"):
        for estimator in ("ips", "snips", "dr", "switch-dr"):
            row = summary[(target, estimator)]
            assert abs(row["bias"]) < 0.08 * row["truth"], (target, estimator, row)
    # The oracle rarely agrees with popular-now, so its weights are large (up to 1 / (0.3/16)).
    for estimator, tolerance in (("ips", 0.25), ("snips", 0.15), ("dr", 0.15)):
        row = summary[("oracle", estimator)]
        assert abs(row["bias"]) < tolerance * row["truth"], (estimator, row)


def test_dm_bias_is_reported_and_dr_corrects_it(result):
    summary = {(r["target"], r["estimator"]): r for r in result["summary"]}
    dm, dr = summary[("oracle", "dm")], summary[("oracle", "dr")]
    assert np.isfinite(dm["bias"]) and np.isfinite(dm["rmse"]) and dm["seeds"] == 2
    assert abs(dr["bias"]) < abs(dm["bias"])


def test_same_seed_same_numbers(result):
    again = run_sim(small_config(), seed=0)
    assert again["per_seed"] == result["per_seed"]


def test_sim_config_rejects_slates():
    with pytest.raises(ConfigError, match="slate_size 1"):
        small_config(env={"slate_size": 2}).validate()


def test_cli_sim_writes_json_and_csv(tmp_path, capsys):
    js, cs = tmp_path / "sim.json", tmp_path / "sim.csv"
    code = main(["ope", "sim", "--seeds", "2", "--sessions", "64", "--steps", "6",
                 "--targets", "random,oracle", "--bootstrap", "20", "--json", str(js),
                 "--csv", str(cs)])
    assert code == 0
    out = json.loads(js.read_text())
    assert [(r["target"], r["estimator"]) for r in out["summary"]][:2] == [
        ("random", "ips"), ("random", "snips")]
    assert len(out["per_seed"]) == 2 * 2 * 5
    assert cs.read_text().startswith("target,estimator,truth,estimate,bias,rmse")
    assert "CI covers" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--targets", "oracle,best"], "unknown policy 'best'"),
    (["--campaign", "men"], "--campaign do(es) not apply"),
    (["--clip", "-1"], "clip must be positive"),
])
def test_cli_sim_usage_errors(argv, message, capsys):
    assert main(["ope", "sim", "--seeds", "1", "--sessions", "8", "--steps", "2", *argv]) == 2
    assert message in capsys.readouterr().err
