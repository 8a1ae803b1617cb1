"""The cold-start experiment on a tiny budget: both arms train, play and report."""

from __future__ import annotations

import math

import numpy as np

from liveq.core.config import load_yaml
from liveq.experiments import cold_start
from liveq.features import CANDIDATE_SCHEMA
from liveq.sim.livestream import LiveStreamVectorEnv
from liveq.train.restore import load_run_agent


def test_cold_start_tiny_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEQ_CACHE_DIR", str(tmp_path / "cache"))
    results = cold_start.run_cold_start("livestream_small", "myopic", [0, 1], steps=400,
                                        eval_steps=100, eval_envs=8, out=tmp_path / "runs",
                                        topic_evidence=30.0, oracle=True)
    assert list(results) == [*cold_start.ARMS, cold_start.ORACLE_ARM, "lift (paired)",
                             "oracle lift (paired)"]
    for arm, lift in (("+ content", "lift (paired)"),
                      (cold_start.ORACLE_ARM, "oracle lift (paired)")):
        for metric in cold_start.METRICS:
            np.testing.assert_allclose(results[lift][metric]["per_seed"],
                                       np.subtract(results[arm][metric]["per_seed"],
                                                   results["stats only"][metric]["per_seed"]))
    for arm in (results[a] for a in (*cold_start.ARMS, cold_start.ORACLE_ARM)):
        for metric in cold_start.METRICS:
            entry = arm[metric]
            assert len(entry["per_seed"]) == 2 and all(map(math.isfinite, entry["per_seed"]))
            assert entry["ci_low"] <= entry["mean"] <= entry["ci_high"]
        assert min(arm["newcomer_impressions"]["per_seed"]) > 0
        assert 0 <= arm["newcomer_ctr"]["mean"] <= 1
        assert 0 < arm["newcomer_share"]["mean"] <= 1
    table = cold_start.table(results)
    assert table.count("\n") == 6 and "+ content" in table and "oracle lift" in table
    widths = {}
    for arm, mode in cold_start.ARMS.items():
        config = cold_start.arm_config(load_yaml("livestream_small"), mode, "myopic", 0, 400,
                                       30.0)
        run = tmp_path / "runs" / "myopic" / ("content" if mode == "text" else "stats") / "seed0"
        env = LiveStreamVectorEnv(2, config=config.env.kwargs)
        load_run_agent(run, "latest", config, env)  # the saved learner fits the arm's spaces
        widths[arm] = env.single_observation_space["candidates"].shape[1]
    assert widths == {"stats only": len(CANDIDATE_SCHEMA), "+ content": len(CANDIDATE_SCHEMA) + 32}


def test_play_counts_newcomer_impressions_and_clicks():
    class FirstNewcomer:
        """Shows a newcomer whenever one is a candidate (else the first live one)."""

        def __init__(self, env):
            self.env = env

        def act(self, obs):
            core = self.env.core
            age = (core.tick - core.streamers.born_tick[np.maximum(core.cand_ids, 0)])
            new = obs["mask"].astype(bool) & (age * core.cfg.step_minutes < 1440)
            pick = np.where(new.any(axis=1), np.argmax(new, axis=1),
                            np.argmax(obs["mask"], axis=1))
            return type("A", (), {"actions": pick})

    env = LiveStreamVectorEnv(8, n_streamers=200, n_candidates=8, followed_slots=2,
                              trending_slots=2, **cold_start.WORLD)
    eager = cold_start.play(FirstNewcomer(env), env, 60)
    plain = cold_start.play(type("P", (), {"act": lambda self, obs: type(
        "A", (), {"actions": np.argmax(obs["mask"], axis=1)})})(), env, 60)
    assert eager["newcomer_impressions"] > plain["newcomer_impressions"] > 0
    assert 0 < eager["newcomer_ctr"] < 1 and eager["newcomer_watch"] > 0


def test_oracle_arm_changes_only_what_the_features_show():
    """The oracle arm plays the very same world (every world setting equal but
    topic_evidence, which only shapes the features) and its features carry true topics."""
    base = load_yaml("livestream_small")
    plain = cold_start.arm_config(base, "off", "myopic", 0, 400, None, cold_start.COLD_WORLD)
    oracle = cold_start.arm_config(base, "off", "myopic", 0, 400, 0.0, cold_start.COLD_WORLD)
    a, b = plain.env.kwargs, oracle.env.kwargs
    assert a["topic_evidence"] == 100.0 and b["topic_evidence"] == 0.0
    assert a["match_weight"] == 3.0 and a["new_streamer_rate"] == 0.01
    assert {k: v for k, v in a.items() if k != "topic_evidence"} == {
        k: v for k, v in b.items() if k != "topic_evidence"}
    envs = [LiveStreamVectorEnv(4, config=kw) for kw in (a, b)]
    obs = [env.reset(seed=3)[0] for env in envs]
    for _ in range(20):
        actions = np.argmax(obs[0]["mask"], axis=1)
        steps = [env.step(actions) for env in envs]
        obs = [s[0] for s in steps]
        np.testing.assert_array_equal(steps[0][1], steps[1][1])  # same rewards: same world
    core = envs[1].core
    np.testing.assert_allclose(core.streamers.known_topic(), core.streamers.topic)
    assert not np.allclose(envs[0].core.streamers.known_topic(), core.streamers.topic)


def test_play_reports_newcomer_share_and_per_session_figures():
    class Eager:
        """Shows a newcomer whenever one is a candidate (else the first live one)."""

        def __init__(self, env, prefer_new):
            self.env, self.prefer_new = env, prefer_new

        def act(self, obs):
            core = self.env.core
            age = (core.tick - core.streamers.born_tick[np.maximum(core.cand_ids, 0)])
            new = obs["mask"].astype(bool) & ((age * core.cfg.step_minutes < 1440)
                                              == self.prefer_new)
            pick = np.where(new.any(axis=1), np.argmax(new, axis=1),
                            np.argmax(obs["mask"], axis=1))
            return type("A", (), {"actions": pick})

    env = LiveStreamVectorEnv(8, n_streamers=200, n_candidates=8, followed_slots=2,
                              trending_slots=2, max_session_steps=10, **cold_start.WORLD)
    eager, shy = (cold_start.play(Eager(env, flag), env, 60) for flag in (True, False))
    assert eager["newcomer_share"] > 0.5 > shy["newcomer_share"]
    assert eager["newcomer_clicks"] > shy["newcomer_clicks"] >= 0
    assert eager["newcomer_minutes"] > shy["newcomer_minutes"] >= 0
    assert eager["newcomer_clicks"] <= 10  # at most one click per step of a session
