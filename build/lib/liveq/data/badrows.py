"""Reading text logs line by line, checking their fields, and handling the rows that fail.

Text logs are read as raw lines (one polars string per physical line, in chunks that stream
through gzip), split on the separator and checked with vectorised expressions, so every
malformed row is caught with its 1-based physical line number and one reason: the first
check it fails. Blank lines hold no data and are passed over without a report.

What happens to bad rows is the caller's choice (`on_bad_rows`):

* `error` (default): raise `LogError` naming the file, the first few lines and reasons,
  and the total count;
* `skip`: drop them and warn on stderr with their count;
* `report`: drop them, list every one on stderr as `file:line: reason`, and keep them
  on the returned log (`InteractionLog.bad_rows`, columns `file`, `line`, `reason`).
"""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

import polars as pl

from liveq.data.log import LogError

ON_BAD_ROWS = ("error", "skip", "report")
BAD_ROWS_SCHEMA = {"file": pl.String, "line": pl.Int64, "reason": pl.String}
SHOW_FIRST = 5
CHUNK_BYTES = 16 << 20  # larger chunks are no faster and cost memory
_NO_SEPARATOR = "\x00"  # never a CSV field byte; lines holding it are reported as bad
INT32_MAX = 2**31 - 1


class Check(NamedTuple):
    """One row check: `bad` flags failing rows, `reason` (a string expression) says why."""

    bad: pl.Expr
    reason: pl.Expr


class LineChunk(NamedTuple):
    first_line: int  # 1-based physical line number of lines[0]
    lines: pl.Series  # String, null for an empty line


def check_on_bad_rows(on_bad_rows: str) -> None:
    if on_bad_rows not in ON_BAD_ROWS:
        raise LogError(f"on_bad_rows must be one of {', '.join(ON_BAD_ROWS)}, "
                       f"got {on_bad_rows!r}")


def empty_bad_rows() -> pl.DataFrame:
    return pl.DataFrame(schema=BAD_ROWS_SCHEMA)


def require_file(path: Path) -> None:
    """A clear error when `path` is missing or is a folder."""
    if path.is_dir():
        raise LogError(f"{path} is a folder; this format reads one file (KuaiLive logs are "
                       "folders: --format kuailive)")
    if not path.is_file():
        raise LogError(f"log file not found: {path}")


def open_bytes(path: str | Path) -> BinaryIO:
    """The file's bytes, decompressed on the fly when it is gzipped (by its magic bytes)."""
    path = Path(path)
    require_file(path)
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def _read(stream: BinaryIO, size: int, path: Path, line: int) -> bytes:
    """Up to `size` bytes (fewer only at the end), or a `LogError` naming the last whole
    line before a gzip stream breaks off (`line`: the number of the block's first line)."""
    parts, got = [], 0
    while got < size:
        try:
            piece = stream.read1(size - got)
        except (EOFError, OSError, zlib.error) as exc:
            whole = line - 1 + sum(p.count(b"\n") for p in parts)
            raise LogError(f"{path}: the gzip data is truncated or corrupt after line "
                           f"{whole} ({exc}); download or copy the file again") from None
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
    return b"".join(parts)


def _parse_lines(block: bytes, path: Path, first_line: int) -> pl.Series:
    expected = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    block = block.replace(b"\x00", b"\x01") if b"\x00" in block else block
    lines = pl.read_csv(io.BytesIO(block), has_header=False, separator=_NO_SEPARATOR,
                        quote_char=None, schema={"raw": pl.String},
                        encoding="utf8-lossy")["raw"]
    if len(lines) != expected:
        raise LogError(f"{path}: could not split lines {first_line}-"
                       f"{first_line + expected - 1} ({len(lines)} read, {expected} expected)")
    return lines


def iter_lines(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[LineChunk]:
    """Physical lines of a text file (plain or gzipped), a chunk of about `chunk_bytes`
    at a time, without ever holding the whole file."""
    path, line = Path(path), 1
    with open_bytes(path) as stream:
        carry = b""
        while True:
            block = _read(stream, chunk_bytes, path, line)
            data = carry + block
            cut = len(data) if not block else data.rfind(b"\n") + 1
            if cut == 0 and block:
                carry = data  # a line longer than the chunk: keep reading
                continue
            chunk, carry = data[:cut], data[cut:]
            if chunk:
                lines = _parse_lines(chunk, path, line)
                yield LineChunk(line, lines)
                line += len(lines)
            if not block:
                return


def read_header(path: str | Path, separator: str = ",") -> list[str]:
    """Column names on line 1 of a CSV file (quotes and spaces stripped)."""
    with open_bytes(path) as stream:
        try:
            raw = stream.readline()
        except (EOFError, OSError, zlib.error) as exc:
            raise LogError(f"{path}: the gzip data is truncated or corrupt in line 1 "
                           f"({exc})") from None
        first = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    if not first.strip():
        what = "the file is empty" if not raw else "line 1 is blank"
        raise LogError(f"{path}: {what}; line 1 should hold the column names")
    return [name.strip().strip('"').strip() for name in first.split(separator)]


def split_fields(chunk: LineChunk, names: Sequence[str], separator: str = ",",
                 skip_lines: int = 0) -> pl.DataFrame:
    """One row per non-blank line: `line`, `n_fields` and the stripped text fields `names`.

    Fields beyond `names` are left in the last one; `n_fields` tells a ragged line.
    """
    lines = chunk.lines.rename("raw").to_frame().with_columns(
        pl.int_range(chunk.first_line, chunk.first_line + len(chunk.lines),
                     dtype=pl.Int64).alias("line"))
    lines = lines.filter(pl.col("line") > skip_lines,
                         pl.col("raw").str.strip_chars().str.len_bytes() > 0)
    parts = pl.col("raw").str.split_exact(separator, len(names) - 1)
    return lines.select(
        "line",
        (pl.col("raw").str.count_matches(separator, literal=True) + 1).alias("n_fields"),
        pl.col("raw").str.contains("\x01", literal=True).alias("nul"),
        *[parts.struct.field(f"field_{i}").str.strip_chars().str.strip_chars('"')
          .alias(name) for i, name in enumerate(names)],
    )


def column_count_check(expected: int) -> Check:
    return Check(pl.col("n_fields") != expected,
                 pl.format(f"expected {expected} columns, got {{}}", pl.col("n_fields")))


def nul_check() -> Check:
    return Check(pl.col("nul"), pl.lit("line holds a NUL or SOH control byte (not text?)"))


def missing_check(name: str, dtype: pl.DataType = pl.String) -> Check:
    value = pl.col(name)
    empty = value.is_null() | (value == "") if dtype == pl.String else value.is_null()
    if dtype.is_float():
        empty = empty | value.is_nan()
    return Check(empty, pl.lit(f"missing value in column {name}"))


def parse(name: str, kind: str, dtype: pl.DataType = pl.String) -> pl.Expr:
    """Column `name` as `_v_<name>`: kind `id` (as read), `int` (Int64) or `number`
    (Float64); null where the text is not an integer (number)."""
    value = pl.col(name)
    if kind == "id":
        parsed = value
    elif dtype == pl.String:
        parsed = value.str.strip_chars().cast(pl.Int64 if kind == "int" else pl.Float64,
                                              strict=False)
    elif kind == "int" and dtype.is_float():
        parsed = pl.when(value == value.floor()).then(value.cast(pl.Int64, strict=False))
    elif dtype.is_numeric():
        parsed = value.cast(pl.Int64 if kind == "int" else pl.Float64, strict=False)
    else:
        parsed = value.cast(pl.String).str.strip_chars().cast(
            pl.Int64 if kind == "int" else pl.Float64, strict=False)
    return parsed.alias(f"_v_{name}")


def field_checks(kinds: dict[str, str], dtypes: dict[str, pl.DataType] | None = None
                 ) -> list[Check]:
    """Missing values in any column of `kinds`, then values that do not parse."""
    dtypes = dtypes or {}
    checks = [missing_check(name, dtypes.get(name, pl.String)) for name in kinds]
    for name, kind in kinds.items():
        value = pl.col(f"_v_{name}")
        if kind == "int":
            checks.append(Check(value.is_null(),
                                pl.format(f"{name} is not an integer: '{{}}'", pl.col(name))))
        elif kind == "number":
            checks.append(Check(value.is_null() | value.is_nan() | value.is_infinite(),
                                pl.format(f"{name} is not a number: '{{}}'", pl.col(name))))
    return checks


def min_check(name: str, low: float, strict: bool = False) -> Check:
    value = pl.col(f"_v_{name}")
    word = "positive" if strict and low == 0 else ("negative" if low == 0 else f"below {low}")
    return Check(value <= low if strict else value < low,
                 pl.format(f"{name} is {word}: {{}}", value))


def range_check(name: str, low: int, high: int) -> Check:
    value = pl.col(f"_v_{name}")
    return Check((value < low) | (value > high),
                 pl.format(f"{name} is out of range [{low}, {high}]: {{}}", value))


def order_check(start: str, stop: str) -> Check:
    return Check(pl.col(f"_v_{stop}") <= pl.col(f"_v_{start}"),
                 pl.format(f"{stop} ({{}}) is not after {start} ({{}})",
                           pl.col(f"_v_{stop}"), pl.col(f"_v_{start}")))


def first_failure(frame: pl.DataFrame, checks: Sequence[Check],
                  file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split `frame` (with a `line` column) into good rows and bad rows with a reason each.

    A row's reason is that of the first check it fails; reason strings are built for the
    bad rows only.
    """
    code = pl.when(checks[0].bad).then(0)
    for i, check in enumerate(checks[1:], start=1):
        code = code.when(check.bad).then(i)
    frame = frame.with_columns(code.otherwise(None).cast(pl.Int16).alias("_failed"))
    good = frame.filter(pl.col("_failed").is_null()).drop("_failed")
    failed = frame.filter(pl.col("_failed").is_not_null())
    if failed.height == 0:
        return good, empty_bad_rows()
    reason = pl.when(pl.col("_failed") == 0).then(checks[0].reason)
    for i, check in enumerate(checks[1:], start=1):
        reason = reason.when(pl.col("_failed") == i).then(check.reason)
    bad = failed.select(pl.lit(file).alias("file"), pl.col("line").cast(pl.Int64),
                        reason.cast(pl.String).alias("reason"))
    return good, bad


def handle_bad_rows(bad: pl.DataFrame, on_bad_rows: str, what: str) -> pl.DataFrame | None:
    """Apply the `on_bad_rows` policy to all bad rows of `what` (a file or folder name).

    Returns the bad rows to keep on the log (`report`), else None; raises for `error`.
    """
    bad = bad.sort("file", "line")
    if bad.height and on_bad_rows == "error":
        listed = "; ".join(f"{r['file']}:{r['line']}: {r['reason']}"
                           for r in bad.head(SHOW_FIRST).iter_rows(named=True))
        more = f" (first {SHOW_FIRST} shown)" if bad.height > SHOW_FIRST else ""
        raise LogError(f"{what}: {bad.height} bad row(s){more}: {listed}; pass "
                       "on_bad_rows='skip' or 'report' (CLI: --on-bad-rows) to drop them")
    if on_bad_rows == "report":
        for row in bad.iter_rows(named=True):
            print(f"{row['file']}:{row['line']}: {row['reason']}", file=sys.stderr)
    if bad.height and on_bad_rows in ("skip", "report"):
        print(f"liveq: warning: {what}: dropped {bad.height} bad row(s)", file=sys.stderr)
    return bad if on_bad_rows == "report" else None
