"""Serving pieces without a server: feature settings, viewer rules, arms, the schema."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from liveq.core.config import ConfigError
from liveq.features.viewer import add_follow, record_watches
from liveq.serving.db import normalise_url, open_log
from liveq.serving.policy_log import arm_of
from liveq.serving.settings import FeatureSettings, serve_config
from liveq.serving.viewers import (
    ViewerState,
    begin_step,
    record_follow,
    record_watch,
    start_session_if_due,
)
from liveq.sim.config import LiveStreamConfig


def test_feature_settings_defaults_are_the_simulators():
    sim = LiveStreamConfig()
    for f in dataclasses.fields(FeatureSettings):
        assert getattr(FeatureSettings(), f.name) == getattr(sim, f.name), f.name


def test_viewer_rules_match_the_features_module():
    settings = FeatureSettings(topic_dim=3, max_follows=2)
    state = ViewerState.new(settings)
    start_session_if_due(state, 1000.0, 30)
    topic = np.array([1.0, 0.0, 0.0], np.float32)
    profile, recent = np.zeros((1, 3), np.float32), np.zeros((1, 3), np.float32)
    for minutes in (5.0, 10.0, 20.0):  # three steps, each served then watched
        begin_step(state, settings, 1000.0)
        record_watch(state, settings, "s1", topic, minutes, 1000.0)
        share = np.float32(min(minutes / 10.0, 1.0))
        record_watches(profile, recent, np.array([0]), topic[None], np.full((1, 1), share),
                       exposure_decay=0.6, profile_rate=0.2)
    np.testing.assert_array_equal(np.float32(state.profile), profile[0])
    np.testing.assert_array_equal(np.float32(state.recent), recent[0])
    assert state.session_steps == 3 and state.session_minutes == 35.0
    assert state.hist_ids[0] == "s1" and state.hist_minutes[0] == 35.0
    for name in ("a", "b", "a", "c"):
        record_follow(state, name, 1000.0)
    follows = np.full((1, 2), -1)
    for i in (0, 1, 0, 2):
        add_follow(follows, np.array([0]), np.array([i]))
    assert state.follows == [["a", "b", "c"][i] for i in follows[0]]


def test_a_silent_viewer_starts_a_new_session_and_a_new_day_counts():
    state = ViewerState.new(FeatureSettings())
    assert start_session_if_due(state, 0.0, 30)
    first = state.session_id
    assert not start_session_if_due(state, 60.0, 30)
    assert start_session_if_due(state, 86_400.0 + 10, 30) and state.session_id != first
    assert state.days_active == 1


def test_arms_are_sticky_and_follow_the_shares():
    arms = [{"name": "a", "share": 0.2}, {"name": "b", "share": 0.8}]
    picks = [arm_of(f"viewer-{i}", arms)["name"] for i in range(5000)]
    assert picks == [arm_of(f"viewer-{i}", arms)["name"] for i in range(5000)]
    assert picks.count("a") / 5000 == pytest.approx(0.2, abs=0.02)
    assert arm_of("x", []) is None


def test_bad_options_and_urls_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="epsilon"):
        serve_config(model="m", epsilon=1.5)
    with pytest.raises(ConfigError, match="not both"):
        serve_config(model="m", epsilon=0.1, temperature=1.0)
    with pytest.raises(ConfigError, match="mysql is not supported"):
        normalise_url("mysql://u@h/db")
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    with pytest.raises(ConfigError, match="cannot open"):
        open_log("postgresql://nobody@127.0.0.1:1/none")


def test_migrations_run_once_when_repeated(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    for _ in range(2):
        engine = open_log(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version"
                                        ).scalar() == "0006"
        engine.dispose()


def test_explain_with_a_myopic_model_splits_each_score(tmp_path):
    from liveq.serving.explain import explain
    from liveq.serving.model import load_model
    from liveq.serving.observe import Catalogue
    from liveq.serving.policy_log import decide
    from serving_support import catalogue, train_tiny_run

    model = load_model(train_tiny_run(tmp_path / "run"))
    rows = catalogue(12)["streamers"]
    cat = Catalogue([r["streamer_id"] for r in rows],
                    np.asarray([r["topic"] for r in rows], np.float32),
                    np.asarray([r["viewers"] for r in rows], np.float32),
                    np.asarray([r["minutes_live"] for r in rows], np.float64),
                    *(np.asarray([r[k] for r in rows], np.float64)
                      for k in ("impressions", "clicks", "watch_share", "age_minutes")))
    state = ViewerState.new(model.settings)
    fields = decide(model, cat, state, 2, {"kind": "softmax", "temperature": 0.5},
                    "ab" * 16, 0.0)
    assert sum(fields["probabilities"][0]) == pytest.approx(1.0)
    out = explain({"decision_id": "ab" * 16, **fields}, model, myopic=model)
    for item in out["items"]:  # the same model as its own myopic part: no future value
        assert item["immediate"] == pytest.approx(item["score"]) and item["future"] == 0.0
