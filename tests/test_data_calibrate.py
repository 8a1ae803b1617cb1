"""Log statistics against hand-worked numbers, the calibration step, a round trip through the
simulator and `liveq data calibrate` end to end."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import yaml

from liveq.cli.main import main
from liveq.core.config import from_dict, load_yaml
from liveq.data import simulate_interactions
from liveq.data import stats as st
from liveq.data.calibrate import (
    KNOBS,
    MAX_STEP,
    build_config,
    calibrate,
    config_yaml,
    format_table,
    log_window,
    prime_time_share,
    update,
)
from liveq.data.log import from_raw
from liveq.sim.config import LiveStreamConfig
from liveq.sim.livestream import LiveStreamVectorEnv


def hand_log():
    """Two viewers, two streamers, 10-minute steps.

    a: x [0,2) and x [2,4) (one spell), y [10,12) after a 6-step hole (a new session).
    b: x [1,3), y [30,31), x [40,42) (a repeat of x).
    """
    frame = pl.DataFrame({"user": ["a", "a", "a", "b", "b", "b"],
                          "item": ["x", "x", "y", "x", "y", "x"],
                          "start": [0, 2, 10, 1, 30, 40], "stop": [2, 4, 12, 3, 31, 42]})
    return from_raw(frame, step_minutes=10, source="hand")


def test_spells_merge_adjacent_rows_and_flag_repeats():
    spells = st.spells(hand_log())
    # dense ids: a=0, b=1; x=0, y=1
    assert spells.select("user", "item", "start", "stop", "repeat").rows() == [
        (0, 0, 0, 4, False), (0, 1, 10, 12, False),
        (1, 0, 1, 3, False), (1, 0, 40, 42, True), (1, 1, 30, 31, False)]


def test_sessions_split_at_holes_longer_than_30_minutes():
    visits = st.sessions(hand_log())
    assert visits.select("user", "start", "stop").rows() == [
        (0, 0, 4), (0, 10, 12), (1, 1, 3), (1, 30, 31), (1, 40, 42)]
    # gaps: a 10 - 4 = 6 steps; b 30 - 3 = 27 and 40 - 31 = 9 steps
    assert st.visit_gaps(visits).tolist() == [6, 27, 9]


def test_merge_intervals_bridges_holes_of_exactly_gap_steps():
    frame = pl.DataFrame({"user": [0, 0, 0], "start": [0, 5, 11], "stop": [2, 8, 12]})
    merged = st.merge_intervals(frame, ["user"], gap=3)  # holes: 3 (bridged), 3 (bridged)
    assert merged.select("start", "stop", "rows", "steps").rows() == [(0, 12, 3, 6)]
    split = st.merge_intervals(frame, ["user"], gap=2)
    assert split.select("start", "stop").rows() == [(0, 2), (5, 8), (11, 12)]


def test_broadcasts_are_each_streamers_watched_intervals_merged():
    streams = st.broadcasts(hand_log())  # bridges holes of up to 12 steps (2 hours)
    # x: [0,2) [1,3) [2,4) -> [0,4); [40,42) is 36 steps later. y: [10,12), [30,31): hole 18
    assert streams.select("item", "start", "stop").rows() == [
        (0, 0, 4), (0, 40, 42), (1, 10, 12), (1, 30, 31)]


def test_log_statistics_by_hand():
    s = st.log_statistics(hand_log())
    assert s["users"] == 2 and s["streamers"] == 2
    assert s["days"] == pytest.approx(42 / 144)
    # broadcasts last 40, 20, 20, 10 minutes
    assert s["stream_hours_mean"] == pytest.approx(90 / 4 / 60)
    assert s["stream_hours_median"] == pytest.approx(20 / 60)
    assert s["streams_live_per_step"] == pytest.approx(9 / 42)
    assert s["streams_per_day"] == pytest.approx(4 / (42 / 144))
    # sessions last 40, 20, 20, 10, 20 minutes; 5 sessions for 2 viewers
    assert s["sessions_per_user"] == 2.5
    assert s["session_minutes_mean"] == pytest.approx(22.0)
    assert s["session_minutes_median"] == 20.0
    assert s["repeat_ratio"] == pytest.approx(1 / 5)
    # gaps 6, 27, 9 steps = 1, 4.5, 1.5 hours
    assert s["gap_hours_mean"] == pytest.approx(7 / 3)
    assert s["gap_hours_median"] == pytest.approx(1.5)
    assert s["top1pct_share"] == pytest.approx(3 / 5)  # x has 3 of the 5 spells
    assert set(s) == set(st.STAT_LABELS)


def test_circular_hours_wrap_around_midnight():
    mean, r = st.circular_hours(np.array([23.0, 1.0]))
    assert min(mean, 24 - mean) == pytest.approx(0.0, abs=1e-9)
    assert r == pytest.approx(math.cos(2 * math.pi / 24))
    assert st.hour_of_day(np.array([0, 6, 150]), 10.0).tolist() == [0.0, 1.0, 1.0]


def test_top_share_takes_the_ceiling_of_the_fraction():
    assert st.top_share(np.array([1, 5, 3, 1]), 0.25) == 0.5
    assert st.top_share(np.array([1, 5, 3, 1]), 0.26) == 0.8


def test_live_day_share_drops_first_and_last_days():
    day = 144  # steps per day at 10 minutes
    # A live on days 0, 1, 3: (3 - 2) / (4 - 2). B on days 0, 4: 0 / 3. C on 0, 1: span 2, out.
    streams = pl.DataFrame({"item": [0, 0, 0, 1, 1, 2, 2],
                            "start": [0, day, 3 * day, 5, 4 * day + 5, 7, day + 7]})
    assert st.live_day_share(streams, day) == pytest.approx(1 / 5)


def test_new_streamer_share_by_day():
    day = 144
    # day 0: A, B; day 1: A, C (C new: 1/2); day 2: A, C, D (D new: 1/3)
    streams = pl.DataFrame({"item": [0, 1, 0, 2, 0, 2, 3],
                            "start": [0, 0, day, day, 2 * day, 2 * day, 2 * day]})
    assert st.new_streamer_share(streams, 0, day) == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_well_watched_keeps_the_busiest_quarter():
    streams = pl.DataFrame({"rows": [1, 2, 3, 4, 5, 6, 7, 8]})
    assert st.well_watched(streams).tolist() == [False] * 6 + [True] * 2


def test_update_moves_each_setting_by_gain_times_the_gap():
    settings = {"n_streamers": 100.0, "mean_stream_hours": 3.0, "live_day_prob": 0.5,
                "new_streamer_rate": 0.002, "patience_scale": 1.0, "return_bias": -1.5,
                "sessions": 1000.0, "epsilon": 0.1, "return_after_days": 1.0,
                "prime_time_hour": 23.5, "prime_time_share": 0.6}
    sim = {"streams_per_day": 100.0, "stream_hours_top_quarter": 3.0, "live_day_share": 0.5,
           "new_streamer_share": 0.3, "session_minutes_mean": 50.0, "sessions_per_user": 1.25,
           "viewers_per_step": 700.0, "top10pct_share": 0.9, "gap_hours_median": 24.0,
           "start_hour_mean": 23.0, "start_hour_concentration": 0.5}
    target = dict(sim, streams_per_day=200.0, sessions_per_user=1.4,
                  viewers_per_step=7000.0, gap_hours_median=float("nan"),
                  start_hour_mean=0.5)
    out = update(settings, target, sim)
    assert out["n_streamers"] == pytest.approx(200.0)  # log-log, gain 1: doubles
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    gain = KNOBS["return_bias"].gain
    assert out["return_bias"] == pytest.approx(
        -1.5 + gain * (logit(1 - 1 / 1.4) - logit(1 - 1 / 1.25)))
    assert out["sessions"] == pytest.approx(1000.0 * math.exp(MAX_STEP))  # x10 asked, capped
    assert out["return_after_days"] == 1.0  # NaN statistic: left alone
    assert out["mean_stream_hours"] == pytest.approx(3.0) and out["epsilon"] == pytest.approx(0.1)
    # 23:00 -> 00:30 is 1.5 h forward round midnight, capped at MAX_STEP hours: 23:30 -> 00:30
    assert out["prime_time_hour"] == pytest.approx((23.5 + MAX_STEP) % 24)
    assert out["prime_time_share"] == pytest.approx(0.6)


def test_prime_time_share_inverts_the_mixture_concentration():
    # sigma = 2 h = pi / 6 rad; a wrapped normal has R = exp(-sigma^2 / 2) = 0.8720
    r_normal = math.exp(-((math.pi / 6) ** 2) / 2)
    assert prime_time_share(0.6 * r_normal, 2.0) == pytest.approx(0.6)
    assert prime_time_share(0.0, 2.0) == 0.0


def test_fitted_config_yaml_loads_back_and_builds_an_env(tmp_path):
    settings = {"n_streamers": 123.4, "mean_stream_hours": 2.5, "live_day_prob": 0.7,
                "new_streamer_rate": 0.001, "patience_scale": 1.5, "return_bias": -1.0,
                "sessions": 300.0, "epsilon": 0.2, "return_after_days": 1.2,
                "prime_time_hour": 20.25, "prime_time_share": 0.5}
    config = build_config(settings, LiveStreamConfig())
    assert (config.n_streamers, config.patience_max) == (123, 6.0)
    fake = type("R", (), {"config": config, "settings": settings})()
    path = tmp_path / "fitted.yaml"
    path.write_text(config_yaml(fake, "log.csv"))
    loaded = from_dict(LiveStreamConfig, load_yaml(path))
    assert loaded == config
    env = LiveStreamVectorEnv(2, config=loaded)
    obs, _ = env.reset(seed=0)
    env.step(np.argmax(obs["mask"], axis=1))
    assert "fitted to streams per day" in path.read_text()


def test_log_window_keeps_the_first_days_and_cuts_rows():
    frame = pl.DataFrame({"user": [1, 1, 2], "item": [5, 6, 5], "start": [0, 140, 150],
                          "stop": [3, 150, 151]})
    window = log_window(from_raw(frame, step_minutes=10, source="w"), 1.0)
    assert window.frame.select("start", "stop").rows() == [(0, 3), (140, 144)]
    assert window.n_users == 1


@pytest.fixture(scope="module")
def truth_log():
    truth = LiveStreamConfig(n_streamers=150, mean_stream_hours=2.0, live_day_prob=0.6,
                             prime_time_hour=13.0, prime_time_share=0.8)
    return simulate_interactions(truth, sessions=300, days=4.0, seed=100, epsilon=0.2,
                                 return_after_days=1.5)


def test_calibration_recovers_identifiable_settings(truth_log):
    result = calibrate(truth_log, seed=0, fit_days=4.0, compare_days=4.0)
    s = result.settings
    assert s["mean_stream_hours"] == pytest.approx(2.0, rel=0.2)
    assert s["sessions"] == pytest.approx(300, rel=0.2)
    assert s["return_after_days"] == pytest.approx(1.5, rel=0.2)
    assert s["n_streamers"] == pytest.approx(150, rel=0.35)
    assert s["live_day_prob"] == pytest.approx(0.6, abs=0.15)
    assert s["prime_time_hour"] == pytest.approx(13.0, abs=1.0)
    assert s["prime_time_share"] == pytest.approx(0.8, abs=0.15)
    table = format_table(result)
    assert table.splitlines()[0].split() == ["statistic", "log", "simulated", "matched", "by"]
    assert "stream duration, mean (h)" in table and "spells on top-1% streamers" in table


def test_calibrate_command_end_to_end(tmp_path, capsys):
    log_path, out = tmp_path / "synth.csv", tmp_path / "fitted.yaml"
    assert main(["data", "synth", "--out", str(log_path), "--sessions", "200", "--days", "3",
                 "--seed", "1"]) == 0
    assert main(["data", "calibrate", str(log_path), "--out", str(out), "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    assert "streams live per step" in printed and "inter-visit gap, median (h)" in printed
    config = from_dict(LiveStreamConfig, yaml.safe_load(out.read_text()))
    assert config.step_minutes == 10.0


def test_calibrate_command_reports_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,s,5,not-a-number\n")
    assert main(["data", "calibrate", str(bad), "--out", str(tmp_path / "o.yaml")]) == 2
    assert "liveq: error:" in capsys.readouterr().err
    assert main(["data", "calibrate", str(tmp_path / "missing.csv"), "--out",
                 str(tmp_path / "o.yaml")]) == 2
