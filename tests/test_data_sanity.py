"""Logs that no single line shows to be wrong: empty, cut off, far-off rows, exact copies."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from liveq.cli.main import main
from liveq.core.config import ConfigError
from liveq.data import LogError, load_log
from liveq.data.calibrate import calibrate
from liveq.data.generic import GenericSchema, load_schema
from liveq.data.kuailive import load_kuailive
from liveq.data.log import from_raw
from liveq.data.sanity import time_range


def twitch_lines(n: int = 300) -> list[str]:
    """Rows spread over steps 0..599, 20 users and 9 streamers, no two alike."""
    return [f"{i % 20},{1000 + i},s{i % 9},{2 * i},{2 * i + 3}" for i in range(n)]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------- the bulk of a log
def test_time_range_grows_over_gaps_unless_far_and_small():
    spd = 144.0
    start = pl.Series("start", [0, 5, 10, 400, 2_000_000_000])
    # 400 is 390 steps after the bulk 0..10: more than a day and the bulk's span, one row
    assert time_range(start, spd) == (0, 10, 154)
    # the same gap crossed by many rows is a second period of the log, not a stray row
    two_weeks = pl.Series("start", [*range(0, 2000, 10), *range(8000, 10000, 10)])
    assert time_range(two_weeks, spd)[:2] == (0, 9990)
    # gaps under a day never split the log; two strays on both sides both stay out
    assert time_range(pl.Series("start", [-10**9, *range(0, 1000, 100), 10**9]), spd) == (
        0, 900, 1800)


# ---------------------------------------------------------------- empty and cut-off files
def test_empty_files_are_named(tmp_path):
    for name in ("empty.csv", "empty.csv.gz"):
        path = tmp_path / name
        path.write_bytes(gzip.compress(b"") if name.endswith(".gz") else b"")
        with pytest.raises(LogError, match=f"{path}: the file is empty"):
            load_log(path)
        with pytest.raises(LogError, match=f"{path}: the file is empty; line 1 should hold"):
            load_log(path, "generic", schema={"user": "u", "item": "i", "start": "a",
                                              "stop": "b"})


def test_a_truncated_gzip_names_the_last_whole_line(tmp_path, capsys):
    data = gzip.compress(("\n".join(twitch_lines(3000)) + "\n").encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LogError, match=r"gzip data is truncated or corrupt after line \d+ "
                                       r"\(Compressed file ended") as err:
        load_log(path)
    line = int(str(err.value).split("after line ")[1].split()[0])
    assert 0 < line < 3000
    assert main(["eval-offline", str(path), "--models", "pop"]) == 2
    assert capsys.readouterr().err.startswith(f"liveq: error: {path}: the gzip data")


# ---------------------------------------------------------------- far rows
def test_a_far_row_is_refused_by_line_or_dropped(tmp_path, capsys):
    lines = twitch_lines()
    lines.insert(41, "7,99,s3,2000000000,2000000001")  # line 42
    lines.insert(101, "8,98,s4,10,3000000")  # line 102: starts in time, stops far after
    path = write(tmp_path / "far.csv", lines)
    with pytest.raises(LogError) as err:
        load_log(path)
    message = str(err.value)
    assert f"{path}: 2 bad row(s)" in message
    assert (f"{path}:42: start (step 2000000000) is far outside the log's time range: the "
            "other rows start in steps 0..598") in message
    assert f"{path}:102: stop (step 3000000) is far after the log's time range" in message
    log = load_log(path, on_bad_rows="report")
    assert log.frame.height == 300 and log.max_step == 601
    assert log.bad_rows["line"].to_list() == [42, 102]
    assert 98 not in log.user_ids.to_list()
    clean = load_log(write(tmp_path / "clean.csv", twitch_lines()))
    assert log.frame.equals(clean.frame) and log.item_ids.equals(clean.item_ids)
    capsys.readouterr()
    for argv in (["eval-offline", str(path), "--models", "pop"],
                 ["data", "analyze", str(path), "--out", str(tmp_path / "an")],
                 ["data", "calibrate", str(path), "--out", str(tmp_path / "fit.yaml")]):
        assert main(argv) == 2
        err_text = capsys.readouterr().err
        assert err_text.startswith(f"liveq: error: {path}: 2 bad row(s)") and "42" in err_text
    assert not (tmp_path / "an").exists() and not (tmp_path / "fit.yaml").exists()


def test_a_far_timestamp_in_a_generic_log_leaves_the_others_steps_alone(tmp_path):
    day = 86400
    rows = [f"u{i % 5},s{i % 3},{1_700_000_000 + 600 * i},{600 * i + 1_700_000_300}"
            for i in range(50)]
    schema = {"user": "u", "item": "i", "start": "t0", "stop": "t1", "time_unit": "s"}
    clean = load_log(write(tmp_path / "clean.csv", ["u,i,t0,t1", *rows]), "generic",
                     schema=schema)
    path = write(tmp_path / "far.csv", ["u,i,t0,t1", "u9,s9,5,400", *rows])  # 1970
    with pytest.raises(LogError, match=f"{path}:2: start .* is far outside"):
        load_log(path, "generic", schema=schema)
    log = load_log(path, "generic", schema=schema, on_bad_rows="skip")
    assert log.frame.equals(clean.frame)  # counted from the first day of the other rows
    assert int(log.frame["start"].min()) < day // 600


# ---------------------------------------------------------------- duplicates
def test_exact_duplicates_are_bad_rows_and_repeats_are_not(tmp_path, capsys):
    lines = twitch_lines()
    lines += [lines[10], lines[10], "3,1003,s3,700,702", "3,1003,s3,702,704",
              lines[20].replace(",1020,", ",5020,")]  # another broadcast id: not a copy
    path = write(tmp_path / "dup.csv", lines)
    with pytest.raises(LogError) as err:
        load_log(path)
    assert (f"{path}: 2 bad row(s): {path}:301: exact duplicate of line 11; "
            f"{path}:302: exact duplicate of line 11;") in str(err.value)
    assert "\n" not in str(err.value)
    log = load_log(path, on_bad_rows="skip")
    assert "dropped 2 bad row(s)" in capsys.readouterr().err
    assert log.frame.height == 300 + 3  # one copy of line 11 and both repeats of 1003
    frame = log.frame.with_columns(log.user_ids.gather(log.frame["user"]).alias("u"))
    assert frame.filter(pl.col("u") == 3, pl.col("start") >= 700).height == 2
    assert main(["eval-offline", str(path), "--models", "pop"]) == 2
    assert "exact duplicate of line 11" in capsys.readouterr().err


def test_generic_and_kuailive_duplicates_name_their_lines(tmp_path):
    path = write(tmp_path / "g.csv", ["u,i,a,b", "1,x,0,2", "2,x,1,3", "1,x,0,2", "1,x,5,6"])
    with pytest.raises(LogError, match=r"g.csv:4: exact duplicate of line 2"):
        load_log(path, "generic", schema={"user": "u", "item": "i", "start": "a", "stop": "b"})
    folder = tmp_path / "kl"
    folder.mkdir()
    write(folder / "click.csv", ["user_id,live_id,streamer_id,timestamp,watch_live_time",
                                 "7,900,55,1746403200000,60000", "7,900,55,1746403200000,60000",
                                 "7,900,55,1746403260000,60000"])
    with pytest.raises(LogError, match=r"click.csv:3: exact duplicate of line 2"):
        load_log(folder, "kuailive")
    assert load_log(folder, "kuailive", on_bad_rows="skip").frame.height == 2


# ---------------------------------------------------------------- schema and sizes
def test_a_schema_may_not_give_one_column_two_roles():
    with pytest.raises(ConfigError, match="user and item both name column 'id'"):
        load_schema({"user": "id", "item": "id", "start": "a", "stop": "b"})
    with pytest.raises(ConfigError, match="stop and value both name column 'b'"):
        load_schema({"user": "u", "item": "i", "start": "a", "stop": "b", "value": "b"})
    both = load_schema({"user": "u", "item": "i", "timestamp": "t", "duration": "d",
                        "watch": "d"})  # a watched time that is the duration: allowed
    assert both.watch == both.duration == "d"


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_step_minutes_must_be_a_positive_number(value):
    with pytest.raises(ConfigError, match="step_minutes"):
        load_schema({"user": "u", "item": "i", "start": "a", "stop": "b",
                     "step_minutes": value})
    with pytest.raises(ConfigError, match="step_minutes must be a positive number"):
        GenericSchema(user="u", item="i", start="a", stop="b", step_minutes=value).validate()
    frame = pl.DataFrame({"user": [1], "item": [1], "start": [0], "stop": [1]})
    with pytest.raises(LogError, match="step_minutes must be a positive number"):
        from_raw(frame, step_minutes=value, source="x")
    with pytest.raises(LogError, match="KuaiLive: step_minutes must be a positive number"):
        load_kuailive(Path("unused"), step_minutes=value)


def test_a_log_shorter_than_a_day_is_too_small_to_calibrate(tmp_path, capsys):
    frame = pl.DataFrame({"user": np.arange(40) % 7, "item": np.arange(40) % 3,
                          "start": np.arange(40), "stop": np.arange(40) + 2})
    with pytest.raises(LogError, match=r"covers 0.28 days \(40 rows\); calibrate needs at "
                                       r"least 1 day \(144 steps of 10 min\)"):
        calibrate(from_raw(frame, step_minutes=10.0, source="short"))
    path = write(tmp_path / "short.csv", [f"{u},{i},s{i % 3},{i},{i + 2}"
                                          for i, u in enumerate(np.arange(40) % 7)])
    assert main(["data", "calibrate", str(path), "--out", str(tmp_path / "fit.yaml")]) == 2
    assert "calibrate needs at least 1 day" in capsys.readouterr().err


def test_library_calls_refuse_a_log_built_with_a_far_row():
    from liveq.data.analyze import analyze_log
    from liveq.ranking.models import PopularNow
    from liveq.ranking.protocol import run_protocol

    n = 600
    frame = pl.DataFrame({"user": np.r_[np.arange(n) % 30, 3], "item": np.r_[np.arange(n) % 7, 1],
                          "start": np.r_[np.arange(n) * 3, 10**9],
                          "stop": np.r_[np.arange(n) * 3 + 2, 10**9 + 1]})
    log = from_raw(frame, step_minutes=10.0, source="built")
    for call in (lambda: analyze_log(log, churn_days=1.0), lambda: calibrate(log),
                 lambda: run_protocol(log, {"pop": PopularNow()})):
        with pytest.raises(LogError, match=r"built: 1 row\(s\) lie far outside the log's time "
                                           r"range \(the other rows start in steps 0..1797; "
                                           r"e.g. a row from step 1000000000"):
            call()
