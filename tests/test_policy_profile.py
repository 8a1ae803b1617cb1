"""The behaviour profile: the same sessions as the online evaluation, picks read right."""

import numpy as np
import pytest

from liveq.core.config import ConfigError, load_yaml
from liveq.eval.online import evaluate
from liveq.experiments import policy_profile
from liveq.policies.baselines import make_baseline
from liveq.sim.vector import make_vec_env
from liveq.train.config import load_run_config


def _env():
    config = load_run_config(load_yaml("livestream_small"))
    return make_vec_env(config.env.id, 16, config.env.kwargs)


def test_popular_picks_the_most_watched_candidate_on_the_evaluation_sessions():
    env = _env()
    r = policy_profile.profile(make_baseline("popular", env, 7), env, 48, 7)
    summary = evaluate(lambda e: make_baseline("popular", e, 7), _env(), 48, 7)
    assert r["popular"] == 1.0 and r["sessions"] == 48
    assert r["return"] == pytest.approx(summary["return"]["mean"])
    assert r["length"] == pytest.approx(summary["length"]["mean"])
    assert r["returned"] == pytest.approx(summary["return_rate"]["mean"])
    for key in ("followed", "stay", "repeat", "new", "clickbait", "clicked"):
        assert 0.0 <= r[key] <= 1.0, key


def test_repeat_policy_stays_with_what_the_viewer_watches():
    env = _env()
    random = policy_profile.profile(make_baseline("random", env, 3), env, 32, 3)
    repeat = policy_profile.profile(make_baseline("repeat", env, 3), env, 32, 3)
    assert repeat["repeat"] > random["repeat"] and random["popular"] < 0.5


def test_clickbait_is_read_from_the_hidden_gap():
    env = _env()
    env.reset(seed=0)
    core = env.unwrapped.core
    obs = core.observe()
    actions = np.zeros(env.num_envs, dtype=np.int64)
    ids = core.cand_ids[:, 0]
    info = {"clicked": np.zeros(env.num_envs, bool), "watch_share": np.zeros(env.num_envs)}
    picks = policy_profile.pick_facts(obs, actions, core, info)
    gap = core.streamers.attract[ids] - core.streamers.quality[ids]
    assert (picks["clickbait"] == (gap > policy_profile.CLICKBAIT_GAP)).all()


def test_unknown_baseline_is_refused_before_anything_runs():
    with pytest.raises(ConfigError, match="unknown baselines \\['moon'\\]"):
        policy_profile.main(["--baselines", "popular,moon"])
