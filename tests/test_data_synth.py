"""Synthetic logs from the simulator: row building, identities, writers and round trips."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import yaml

from liveq.cli.main import main
from liveq.core.config import ConfigError
from liveq.data import load_log
from liveq.data.synth import (
    AwayViewers,
    Identities,
    RowBuilder,
    StepEvents,
    simulate_rows,
    write_rows,
)
from liveq.sim.config import LiveStreamConfig

SMALL = LiveStreamConfig(n_streamers=80, n_candidates=8, followed_slots=2, trending_slots=2,
                         new_streamer_rate=0.02)


@pytest.fixture(scope="module")
def raw() -> pl.DataFrame:
    return simulate_rows(SMALL, sessions=150, days=2.5, seed=3)


def events(step, clicked, user, stream, watch=1.0, gifts=0.0) -> StepEvents:
    n = len(clicked)
    return StepEvents(step, np.array(clicked), np.array(user), np.array(stream) * 10,
                      np.array(stream), np.full(n, watch), np.full(n, gifts),
                      np.full(n, step / 10))


# ---------------------------------------------------------------- row building (by hand)
def test_row_builder_merges_consecutive_steps_on_one_broadcast():
    rows = RowBuilder(3)
    rows.add(events(5, [True, True, False], [0, 1, 2], [7, 7, 0], gifts=1.0))
    rows.add(events(6, [True, True, True], [0, 1, 2], [7, 8, 9]))  # slot 1 switches
    rows.add(events(7, [False, True, True], [0, 1, 3], [0, 8, 9]))  # slot 2: a new user
    rows.add(events(8, [True, False, False], [0, 1, 3], [7, 0, 0]))  # slot 0: after a gap
    frame = rows.frame().sort("start", "user", "stream")
    assert frame.select("user", "item", "stream", "start", "stop").rows() == [
        (0, 70, 7, 5, 7), (1, 70, 7, 5, 6), (1, 80, 8, 6, 8), (2, 90, 9, 6, 7),
        (3, 90, 9, 7, 8), (0, 70, 7, 8, 9)]
    assert frame["watch"].to_list() == [2.0, 1.0, 2.0, 1.0, 1.0, 1.0]
    assert frame["value"].to_list() == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    # A row keeps the propensity of its first step (here step / 10).
    assert frame["propensity"].to_list() == [0.5, 0.5, 0.6, 0.6, 0.7, 0.8]


def fake_core(born, live):
    return SimpleNamespace(streamers=SimpleNamespace(born_tick=np.array(born),
                                                     live=np.array(live)))


def test_identities_new_streamers_and_broadcasts():
    ids = Identities(2, fake_core([0, 0, 0], [True, False, True]))
    assert ids.item.tolist() == [0, 1, 2] and ids.stream.tolist() == [0, -1, 1]
    ids.update_streamers(fake_core([0, 5, 0], [True, True, False]))  # slot 1 reborn, live
    assert ids.item.tolist() == [0, 3, 2] and ids.stream.tolist() == [0, 2, 1]
    ids.update_streamers(fake_core([0, 5, 0], [False, True, True]))  # slot 2 live again
    assert ids.stream.tolist() == [0, 2, 3]
    ids.assign_users(np.array([1]), np.array([-1]))
    ids.assign_users(np.array([0]), np.array([1]))
    assert ids.user.tolist() == [1, 2]


def test_away_viewers_come_back_when_due_and_take_free_slots():
    viewers = SimpleNamespace(cfg=SimpleNamespace(step_minutes=10.0),
                              will_return=np.zeros(3, dtype=bool),
                              **{k: np.arange(3) * 10 for k in
                                 ("interest", "profile", "gift_propensity", "follows",
                                  "hist_ids", "hist_minutes", "days")})
    away = AwayViewers(viewers, steps_away=5, rng=np.random.default_rng(0))
    away.jitter = 0.0
    away.leave(viewers, np.array([1]), np.array([41]), tick=0)  # due at tick 5
    assert away.waiting == 1
    assert away.come_back(viewers, np.array([0, 1]), tick=4).tolist() == [-1, -1]
    assert viewers.will_return.tolist() == [False, False, False]
    assert away.come_back(viewers, np.array([2, 0]), tick=5).tolist() == [41, -1]
    assert viewers.will_return.tolist() == [False, False, True]
    assert viewers.days.tolist() == [0, 10, 10] and away.waiting == 0


# ---------------------------------------------------------------- simulated logs
def test_rows_are_valid_and_never_overlap_for_a_viewer(raw):
    assert raw.height > 1000
    assert (raw["stop"] > raw["start"]).all()
    assert (raw["watch"] <= (raw["stop"] - raw["start"]) * SMALL.step_minutes + 1e-4).all()
    assert (raw["value"] >= 0).all()
    gaps = raw.sort("user", "start").select(
        (pl.col("start") - pl.col("stop").shift(1)).over("user").alias("gap"))["gap"]
    assert gaps.drop_nulls().min() >= 0
    # A broadcast belongs to one streamer; newcomer streamers get new ids.
    assert raw.group_by("stream").agg(pl.col("item").n_unique())["item"].max() == 1
    assert raw["item"].max() >= SMALL.n_streamers


def epsilon_greedy_values(epsilon: float, slate_size: int, n_candidates: int) -> set:
    """Every probability epsilon-greedy can give a streamer of being shown, by hand: a
    share `epsilon * min(L, n) / n` of uniform slates from n allowed, plus 1 - epsilon
    when the greedy slate holds it."""
    shares = {epsilon * min(slate_size, n) / n for n in range(1, n_candidates + 1)}
    return {round(v, 9) for v in shares | {1.0 - epsilon + share for share in shares}}


def test_rows_carry_the_behaviours_exact_propensity(raw):
    assert set(raw["propensity"].round(9)) <= epsilon_greedy_values(0.1, 1, 8)
    # popular-now is followed 90% of the time, and most clicks follow it.
    assert (raw["propensity"] > 0.9).mean() > 0.5
    slates = simulate_rows(dataclasses.replace(SMALL, slate_size=3), sessions=40, days=0.3,
                           seed=1, epsilon=0.2)
    values = set(slates["propensity"].round(9))
    assert values <= epsilon_greedy_values(0.2, 3, 8) and len(values) >= 2


def test_returning_viewers_come_back_on_later_days(raw):
    days = raw.group_by("user").agg((pl.col("start") // 144).n_unique().alias("days"))
    assert (days["days"] >= 2).sum() > 50
    repeats = raw.sort("start").select(pl.int_range(pl.len()).over("user", "item") > 0)
    assert repeats.to_series().mean() > 0.1
    # Without time away, a returning viewer is back at once: few users span two days.
    now = simulate_rows(SMALL, sessions=150, days=2.5, seed=3, return_after_days=0)
    now_days = now.group_by("user").agg((pl.col("start") // 144).n_unique().alias("days"))
    assert (now_days["days"] >= 2).sum() < (days["days"] >= 2).sum() / 2


def test_same_seed_same_log_other_seed_other_log(raw):
    assert simulate_rows(SMALL, sessions=150, days=2.5, seed=3).equals(raw)
    assert not simulate_rows(SMALL, sessions=150, days=2.5, seed=4).equals(raw)


def test_simulate_interactions_and_bad_arguments():
    from liveq.data import simulate_interactions

    log = simulate_interactions(SMALL, policy="random", epsilon=0.5, sessions=40, days=0.5)
    assert log.frame.columns == ["user", "item", "start", "stop", "watch", "value"]
    assert log.step_minutes == 10.0 and log.n_users > 40
    for kwargs, match in [({"policy": "best"}, "unknown behaviour policy"),
                          ({"epsilon": 1.5}, "epsilon must be in"),
                          ({"sessions": 0}, "sessions must be at least 1"),
                          ({"days": 0}, "days must be positive"),
                          ({"return_after_days": -1}, "return_after_days")]:
        with pytest.raises(ConfigError, match=match):
            simulate_rows(SMALL, **kwargs)


# ---------------------------------------------------------------- writers and round trips
def in_original_ids(log) -> pl.DataFrame:
    return log.frame.with_columns(
        log.user_ids.gather(log.frame["user"]).alias("user"),
        log.item_ids.gather(log.frame["item"]).alias("item"))


KEY = ["start", "user", "item", "stop"]


def test_twitch_round_trip(raw, tmp_path):
    write_rows(raw, "twitch", tmp_path / "log.csv.gz", SMALL.step_minutes)
    loaded = in_original_ids(load_log(tmp_path / "log.csv.gz")).with_columns(
        pl.col("item").str.strip_prefix("s").cast(pl.Int64))
    assert loaded.sort(KEY).equals(raw.select(KEY[1], KEY[2], KEY[0], KEY[3]).sort(KEY))


@pytest.mark.parametrize("name", ["log.parquet", "log.csv"])
def test_generic_round_trip(raw, tmp_path, name):
    write_rows(raw, "generic", tmp_path / name, SMALL.step_minutes)
    log = load_log(tmp_path / name, format="generic", schema=tmp_path / "log.schema.yaml")
    expected = raw.select("user", "item", "start", "stop", "watch", "value").sort(KEY)
    assert in_original_ids(log).sort(KEY).equals(expected)
    written = pl.read_csv(tmp_path / name) if name.endswith(".csv") else \
        pl.read_parquet(tmp_path / name)
    assert written["propensity"].to_list() == raw["propensity"].to_list()  # the file carries it


def test_kuailive_round_trip(raw, tmp_path):
    write_rows(raw, "kuailive", tmp_path / "kl", SMALL.step_minutes)
    got = in_original_ids(load_log(tmp_path / "kl", format="kuailive")).sort(KEY[:3])
    want = raw.sort("start", "user", "item")
    assert got.select("user", "item", "start").equals(want.select("user", "item", "start"))
    assert np.allclose(got["watch"], want["watch"], atol=1e-4)
    assert got["value"].equals(want["value"])
    # KuaiLive keeps watched time, not the span: stop = the step where watching ends.
    end = np.ceil(want["start"].to_numpy() + np.round(want["watch"].to_numpy() * 6e4) / 6e5)
    assert got["stop"].to_list() == np.maximum(end, want["start"].to_numpy() + 1).tolist()


def test_synth_command_writes_and_summarises(tmp_path, capsys):
    (tmp_path / "sim.yaml").write_text(yaml.safe_dump({"n_streamers": 60, "n_candidates": 8,
                                                       "followed_slots": 2,
                                                       "trending_slots": 2}))
    out = tmp_path / "log.csv"
    assert main(["data", "synth", "--out", str(out), "--sessions", "50", "--days", "1",
                 "--config", str(tmp_path / "sim.yaml"), "--policy", "repeat"]) == 0
    line = capsys.readouterr().out.strip()
    log = load_log(out)
    assert line.startswith(f"wrote {out} (twitch): {log.frame.height} rows, {log.n_users} "
                           f"users, {log.n_items} streamers, 144 steps of 10 min")
    (tmp_path / "bad.yaml").write_text("n_streamerz: 5\n")
    assert main(["data", "synth", "--out", str(out), "--config",
                 str(tmp_path / "bad.yaml"), "--force"]) == 2
    assert "liveq: error: unknown config key 'n_streamerz'" in capsys.readouterr().err


@pytest.mark.parametrize("format", ["twitch", "generic", "kuailive"])
def test_synth_refuses_to_overwrite_a_log_without_force(tmp_path, capsys, format):
    out = tmp_path / ("kl" if format == "kuailive" else "log.csv")
    argv = ["data", "synth", "--format", format, "--out", str(out), "--sessions", "20",
            "--days", "0.1"]
    assert main(argv) == 0
    written = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("liveq: error: --out") and "pass --force" in err
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == written
    assert main([*argv, "--force"]) == 0


def test_synth_refuses_a_folder_as_a_file(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path), "--days", "0.1"]) == 2
    assert f"--out {tmp_path} is a folder" in capsys.readouterr().err


def test_synth_command_generic_writes_its_schema(tmp_path, capsys):
    out = tmp_path / "log.parquet"
    assert main(["data", "synth", "--format", "generic", "--out", str(out), "--sessions",
                 "30", "--days", "0.5", "--epsilon", "1"]) == 0
    assert f"(generic, schema {tmp_path / 'log.schema.yaml'})" in capsys.readouterr().out
    log = load_log(out, format="generic", schema=tmp_path / "log.schema.yaml")
    assert log.frame.height > 0 and "watch" in log.frame.columns
