"""Interaction-log loaders: Twitch, KuaiLive and generic, line by line on bad rows."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from liveq.core.config import ConfigError
from liveq.data import LogError, load_log
from liveq.data.generic import GenericSchema, load_schema
from liveq.data.log import from_ranked, from_raw
from liveq.data.twitch import iter_twitch_chunks, load_twitch

TWITCH_LINES = [
    "1,100,alice,10,12",  # 1 good
    "2,101,bob,10,11",  # 2 good
    "1,100,alice,12",  # 3 one column short
    "",  # 4 blank: no data, not reported
    "x,102,carol,3,4",  # 5
    "3,103,,3,4",  # 6
    "3,104,dave,9,9",  # 7
    "3,105,dave,-2,4",  # 8
    "4,106,erin,1.5,3",  # 9
    "5,107,frank,1,2,9",  # 10 one column too many
    "6,108,gina,4,5\r",  # 11 good (CRLF)
    "7,109,hal\x00,4,5",  # 12 NUL byte
    "2,101,bob,11,13",  # 13 good, no final newline
]
TWITCH_BAD = [
    (3, "expected 5 columns, got 4"),
    (5, "user_id is not an integer: 'x'"),
    (6, "missing value in column streamer_name"),
    (7, "stop (9) is not after start (9)"),
    (8, "start is out of range [0, 2147483647]: -2"),
    (9, "start is not an integer: '1.5'"),
    (10, "expected 5 columns, got 6"),
    (12, "line holds a NUL or SOH control byte (not text?)"),
]


def write_twitch_file(tmp_path: Path, gz: bool = False) -> Path:
    text = "\n".join(TWITCH_LINES).encode()
    path = tmp_path / ("log.csv.gz" if gz else "log.csv")
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def bad_list(log) -> list[tuple[int, str]]:
    return [(r["line"], r["reason"]) for r in log.bad_rows.iter_rows(named=True)]


def original(log) -> pl.DataFrame:
    """The log's rows in original ids, in a canonical order."""
    return log.frame.with_columns(
        log.user_ids.gather(log.frame["user"]).alias("user"),
        log.item_ids.gather(log.frame["item"]).alias("item"),
    ).sort("start", "user", "item", "stop")


# ---------------------------------------------------------------- Twitch
def test_twitch_error_names_lines_and_reasons(tmp_path):
    path = write_twitch_file(tmp_path)
    with pytest.raises(LogError) as err:
        load_log(path)
    message = str(err.value)
    assert message.startswith(f"{path}: 8 bad row(s) (first 5 shown):")
    for line, reason in TWITCH_BAD[:5]:
        assert f"{path}:{line}: {reason}" in message
    assert f"{path}:9:" not in message
    assert "on_bad_rows='skip' or 'report'" in message


def test_twitch_report_keeps_every_bad_row(tmp_path, capsys):
    path = write_twitch_file(tmp_path)
    log = load_log(path, on_bad_rows="report")
    assert bad_list(log) == TWITCH_BAD
    assert set(log.bad_rows["file"]) == {str(path)}
    err = capsys.readouterr().err
    for line, reason in TWITCH_BAD:
        assert f"{path}:{line}: {reason}\n" in err
    assert "dropped 8 bad row(s)" in err


def test_twitch_good_rows_dense_ids_in_time_order(tmp_path, capsys):
    log = load_log(write_twitch_file(tmp_path), on_bad_rows="skip")
    assert "dropped 8 bad row(s)" in capsys.readouterr().err
    assert log.bad_rows is None
    # Sorted by (start, original user): gina@4, alice@10, bob@10, bob@11.
    assert log.frame.rows() == [(0, 0, 4, 5), (1, 1, 10, 12), (2, 2, 10, 11), (2, 2, 11, 13)]
    assert log.user_ids.to_list() == [6, 1, 2]
    assert log.item_ids.to_list() == ["gina", "alice", "bob"]
    assert log.step_minutes == 10.0 and log.max_step == 13
    assert log.frame.schema == {"user": pl.Int32, "item": pl.Int32, "start": pl.Int32,
                                "stop": pl.Int32}


def test_twitch_gzip_and_tiny_chunks_give_the_same_lines(tmp_path):
    plain = load_log(write_twitch_file(tmp_path), on_bad_rows="report")
    zipped = load_log(write_twitch_file(tmp_path, gz=True), on_bad_rows="report")
    assert plain.frame.equals(zipped.frame) and bad_list(zipped) == TWITCH_BAD
    path = write_twitch_file(tmp_path)
    for size in (1, 7, 40):  # chunk borders fall inside lines
        chunks = list(iter_twitch_chunks(path, chunk_bytes=size))
        bad = pl.concat([c.bad for c in chunks])
        assert list(zip(bad["line"], bad["reason"], strict=True)) == TWITCH_BAD
        assert pl.concat([c.frame for c in chunks])["line"].to_list() == [1, 2, 11, 13]
        assert load_twitch(path, "skip", chunk_bytes=size).frame.equals(plain.frame)


def test_twitch_empty_and_missing_files(tmp_path):
    with pytest.raises(LogError, match="log file not found"):
        load_log(tmp_path / "nope.csv")
    for fmt in ("twitch", "generic"):
        with pytest.raises(LogError, match="is a folder; this format reads one file"):
            load_log(tmp_path, fmt, schema={"user": "u", "item": "i", "start": "a", "stop": "b"}
                     if fmt == "generic" else None)
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(LogError, match="no interactions"):
        load_log(tmp_path / "empty.csv")


def test_from_ranked_matches_from_raw():
    rng = np.random.default_rng(3)
    start = rng.integers(0, 20, 500)
    raw = pl.DataFrame({"user": rng.integers(-5, 40, 500) * 7,
                        "item": [f"s{i}" for i in rng.integers(0, 30, 500)],
                        "start": start, "stop": start + rng.integers(1, 4, 500)})
    users, items = raw["user"].unique().sort(), raw["item"].unique().sort()
    ranked = raw.with_columns(
        pl.Series("user", np.searchsorted(users.to_numpy(), raw["user"].to_numpy())
                  .astype(np.int32)),
        pl.Series("item", np.searchsorted(items.to_numpy(), raw["item"].to_numpy())
                  .astype(np.int32)))
    a = from_ranked(ranked, users, items, step_minutes=10, source="x")
    b = from_raw(raw, step_minutes=10, source="x")
    key = ["start", "user", "item", "stop"]
    assert a.frame.sort(key).equals(b.frame.sort(key))
    assert a.user_ids.equals(b.user_ids) and a.item_ids.equals(b.item_ids)


# ---------------------------------------------------------------- KuaiLive
DAY0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC
MIN = 60_000


def write_kuailive_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "KuaiLive"
    folder.mkdir()
    (folder / "click.csv").write_text("\n".join([
        "user_id,live_id,streamer_id,timestamp,watch_live_time",
        f"7,900,55,{DAY0 + 5 * MIN},{25 * MIN}",  # 2: steps 0..3, 25 min
        f"8,901,66,{DAY0 + 20 * MIN},0",  # 3: step 2 only
        f"7,900,55,{DAY0 + 1440 * MIN},{10 * MIN}",  # 4: next day, step 144 only
        "9,902,77,abc,100",  # 5
        f"9,902,77,{DAY0}",  # 6
        f"9,902,77,{DAY0},-5",  # 7
    ]) + "\n")
    (folder / "gift.csv").write_text("\n".join([
        "gift_price,timestamp,user_id,live_id,streamer_id",  # any column order
        f"3,{DAY0 + 10 * MIN},7,900,55",  # to the click on line 2
        f"2,{DAY0 + 20 * MIN},7,900,55",  # same
        f"1,{DAY0 + 1441 * MIN},7,900,55",  # to the click on line 4
        f"5,{DAY0 + 20 * MIN},8,999,66",  # no click in room 999
        "1,x,7,900,55",  # 6
    ]) + "\n")
    (folder / "room.csv").write_text("ignored\n")
    return folder


def test_kuailive_steps_watch_and_gifts(tmp_path, capsys):
    folder = write_kuailive_folder(tmp_path)
    log = load_log(folder, format="kuailive", on_bad_rows="report")
    assert original(log).rows() == [(7, 55, 0, 3, 25.0, 5.0), (8, 66, 2, 3, 0.0, 0.0),
                                    (7, 55, 144, 145, 10.0, 1.0)]
    click, gift = str(folder / "click.csv"), str(folder / "gift.csv")
    assert log.bad_rows.rows() == [
        (click, 5, "timestamp is not an integer: 'abc'"),
        (click, 6, "expected 5 columns, got 4"),
        (click, 7, "watch_live_time is negative: -5.0"),
        (gift, 6, "timestamp is not an integer: 'x'"),
    ]
    assert "1 gift(s) (price 5) have no earlier click" in capsys.readouterr().err


def test_kuailive_errors_name_what_is_missing(tmp_path):
    folder = write_kuailive_folder(tmp_path)
    with pytest.raises(LogError, match=r"4 bad row\(s\)"):
        load_log(folder, format="kuailive")
    (folder / "click.csv").write_text("user_id,live_id,timestamp\n1,2,3\n")
    with pytest.raises(LogError, match="missing column.s. streamer_id, watch_live_time "
                                       r"\(line 1 has: user_id, live_id, timestamp\)"):
        load_log(folder, format="kuailive")
    (folder / "click.csv").unlink()
    with pytest.raises(LogError, match="no click.csv"):
        load_log(folder, format="kuailive")
    with pytest.raises(LogError, match="must be a folder"):
        load_log(folder / "gift.csv", format="kuailive")


# ---------------------------------------------------------------- generic
def test_generic_csv_seconds_with_duration(tmp_path):
    day3 = 3 * 86400
    (tmp_path / "log.csv").write_text("\n".join([
        "uid;streamer;ts;dur;w",
        f"u1;alpha;{day3 + 3600};650;600",  # 2: 01:00 -> step 12, ends 01:10:50 -> stop 15
        f"u2;beta;{day3 + 86400};0;0",  # 3: next day 00:00 -> step 288 only
        f"u3;beta;{day3};-1;0",  # 4
        f";beta;{day3};5;0",  # 5
        f"u4;gamma;{day3};5;-2",  # 6
    ]) + "\n")
    schema = {"user": "uid", "item": "streamer", "timestamp": "ts", "duration": "dur",
              "watch": "w", "time_unit": "s", "step_minutes": 5, "watch_unit": "s",
              "separator": ";"}
    log = load_log(tmp_path / "log.csv", format="generic", schema=schema,
                   on_bad_rows="report")
    assert original(log).rows() == [("u1", "alpha", 12, 15, 10.0), ("u2", "beta", 288, 289, 0.0)]
    assert log.step_minutes == 5.0
    assert bad_list(log) == [(4, "dur is negative: -1.0"), (5, "missing value in column uid"),
                             (6, "w is negative: -2.0")]


def test_generic_parquet_rows_and_yaml_schema(tmp_path):
    pl.DataFrame({"who": [10, 11, 12, 13, 14], "what": [1, 1, 2, None, 2],
                  "t0": [1.0, 2.0, 5.0, 1.0, 1.5], "t1": [3, None, 3, 2, 4]}).write_parquet(
        tmp_path / "log.parquet")
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(
        {"user": "who", "item": "what", "start": "t0", "stop": "t1"}))
    log = load_log(tmp_path / "log.parquet", format="generic",
                   schema=tmp_path / "schema.yaml", on_bad_rows="report")
    assert original(log).rows() == [(10, 1, 1, 3)]
    assert bad_list(log) == [(2, "missing value in column t1"),
                             (3, "t1 (3) is not after t0 (5)"),
                             (4, "missing value in column what"),
                             (5, "t0 is not an integer: '1.5'")]


def test_generic_schema_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'colour'"):
        load_schema({"user": "a", "item": "b", "start": "s", "stop": "t", "colour": "red"})
    with pytest.raises(ConfigError, match="start and stop go together"):
        load_schema({"user": "a", "item": "b", "start": "s"})
    with pytest.raises(ConfigError, match="either start and stop, or timestamp and duration"):
        load_schema({"user": "a", "item": "b", "start": "s", "stop": "t", "timestamp": "x"})
    with pytest.raises(ConfigError, match="user: name the column"):
        load_schema({"item": "b", "start": "s", "stop": "t"})
    with pytest.raises(ConfigError, match="time_unit: expected one of"):
        load_schema({"user": "a", "item": "b", "start": "s", "stop": "t", "time_unit": "h"})
    (tmp_path / "s.yaml").write_text("user: a\nitem: b\nstart: s\nstop: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_schema(tmp_path / "s.yaml")
    assert load_schema(GenericSchema(user="a", item="b", start="s", stop="t")).stop == "t"
    (tmp_path / "log.csv").write_text("a,b,s\n1,2,3\n")
    with pytest.raises(LogError, match=r"missing column\(s\) t \(line 1 has: a, b, s\)"):
        load_log(tmp_path / "log.csv", format="generic",
                 schema={"user": "a", "item": "b", "start": "s", "stop": "t"})


def test_load_log_rejects_bad_arguments(tmp_path):
    path = write_twitch_file(tmp_path)
    with pytest.raises(LogError, match="unknown log format 'csv'"):
        load_log(path, format="csv")
    with pytest.raises(LogError, match="on_bad_rows must be one of error, skip, report"):
        load_log(path, on_bad_rows="ignore")
    with pytest.raises(LogError, match="schema applies to the generic format only"):
        load_log(path, schema={"user": "a"})
    with pytest.raises(LogError, match="generic format needs a schema"):
        load_log(path, format="generic")

