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
                                        eval_steps=100, eval_envs=8, out=tmp_path / "runs")
    assert list(results) == [*cold_start.ARMS, "lift (paired)"]
    lift = results["lift (paired)"]["return"]["per_seed"]
    np.testing.assert_allclose(lift, np.subtract(results["+ content"]["return"]["per_seed"],
                                                 results["stats only"]["return"]["per_seed"]))
    for arm in (results[a] for a in cold_start.ARMS):
        for metric in cold_start.METRICS:
            entry = arm[metric]
            assert len(entry["per_seed"]) == 2 and all(map(math.isfinite, entry["per_seed"]))
            assert entry["ci_low"] <= entry["mean"] <= entry["ci_high"]
        assert min(arm["newcomer_impressions"]["per_seed"]) > 0
        assert 0 <= arm["newcomer_ctr"]["mean"] <= 1
    table = cold_start.table(results)
    assert table.count("\n") == 4 and "+ content" in table and "lift" in table
    widths = {}
    for arm, mode in cold_start.ARMS.items():
        config = cold_start.arm_config(load_yaml("livestream_small"), mode, "myopic", 0, 400)
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
