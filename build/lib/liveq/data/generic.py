"""Any CSV or Parquet interaction log, described by a small YAML schema.

The schema names the user's columns; times are either a start and a stop, or a timestamp
and a duration::

    user: uid                 # required
    item: streamer            # required: what is recommended (a streamer)
    start: t0                 # start and stop ...
    stop: t1
    # timestamp: ts           # ... or timestamp and duration
    # duration: dur
    watch: watch_time         # optional: watched time
    value: gifts              # optional: gifts or any other value
    time_unit: step           # step (default), ms, s or min
    step_minutes: 10          # minutes per step (default 10)
    watch_unit: min           # min (default), s or ms
    separator: ","            # CSV only

With `time_unit: step` the times are already integer steps. Otherwise `start = floor(t0 /
step)` and `stop = ceil(t1 / step)` (with a duration: `t1 = timestamp + duration`, at
least one step), counted from 00:00 UTC of the first day in the log, so that `step %
steps_per_day` is the time of day. The CSV needs a header line; quoted fields may not
hold the separator. Parquet bad rows are reported by 1-based row number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import polars as pl

from liveq.core.config import ConfigError, from_dict, load_yaml, require, save_yaml
from liveq.core.units import MINUTES_PER_DAY
from liveq.data import badrows as br
from liveq.data.log import InteractionLog, LogError, from_raw
from liveq.data.sanity import duplicate_check, far_check, mark_copies, time_range

MINUTES = {"ms": 60_000.0, "s": 60.0, "min": 1.0}  # time units per minute
ROLES = ("user", "item", "start", "stop", "timestamp", "duration", "watch", "value")
SHARED_ROLES = {frozenset({"duration", "watch"})}
"""Roles one column may hold together: a watched time that is also the duration."""


@dataclass(kw_only=True)
class GenericSchema:
    """Which columns of a CSV or Parquet log hold what, and in which units."""

    user: str = ""
    """Column with user ids."""
    item: str = ""
    """Column with item (streamer) ids."""
    start: str | None = None
    """Column with the time the interaction started (with `stop`)."""
    stop: str | None = None
    """Column with the time it ended, exclusive (with `start`)."""
    timestamp: str | None = None
    """Column with the time it started (with `duration`)."""
    duration: str | None = None
    """Column with how long it lasted, in `time_unit` (with `timestamp`)."""
    watch: str | None = None
    """Optional column with the time actually watched, in `watch_unit`."""
    value: str | None = None
    """Optional column with gifts or another value of the interaction."""
    time_unit: Literal["step", "ms", "s", "min"] = "step"
    """Unit of the time columns; `step` means integer steps already."""
    step_minutes: float = 10.0
    """Minutes per step."""
    watch_unit: Literal["min", "s", "ms"] = "min"
    """Unit of the `watch` column."""
    separator: str = ","
    """CSV field separator (one character)."""

    def validate(self) -> None:
        require(bool(self.user), "user: name the column that holds user ids")
        require(bool(self.item), "item: name the column that holds item (streamer) ids")
        spans = self.start is not None or self.stop is not None
        stamps = self.timestamp is not None or self.duration is not None
        require(spans != stamps, "give either start and stop, or timestamp and duration")
        if spans:
            require(self.start is not None and self.stop is not None,
                    "start and stop go together: name both columns")
        else:
            require(self.timestamp is not None and self.duration is not None,
                    "timestamp and duration go together: name both columns")
        require(math.isfinite(self.step_minutes) and self.step_minutes > 0,
                f"step_minutes must be a positive number, got {self.step_minutes}")
        self._check_roles()
        require(len(self.separator) == 1 and self.separator not in '"\n\r',
                f"separator must be one character (not a quote or newline), got "
                f"{self.separator!r}")

    def _check_roles(self) -> None:
        by_column: dict[str, list[str]] = {}
        for role in ROLES:
            column = getattr(self, role)
            if column:
                by_column.setdefault(column, []).append(role)
        for column, roles in by_column.items():
            require(len(roles) == 1 or frozenset(roles) in SHARED_ROLES,
                    f"{' and '.join(roles)} both name column {column!r}; each role needs its "
                    "own column (only watch may be the duration column)")

    def kinds(self) -> dict[str, str]:
        """Column -> kind (`id`, `int`, `number`) for every column the schema uses."""
        time_kind = "int" if self.time_unit == "step" else "number"
        roles = [(self.user, "id"), (self.item, "id"), (self.start, time_kind),
                 (self.stop, time_kind), (self.timestamp, time_kind),
                 (self.duration, "number"), (self.watch, "number"), (self.value, "number")]
        kinds: dict[str, str] = {}
        for column, kind in roles:
            if column is not None and kinds.get(column) != "int":
                kinds[column] = kind
        return kinds

    def checks(self) -> list[br.Check]:
        """Row checks beyond missing and unparsable values."""
        checks = []
        first = self.start or self.timestamp
        if self.time_unit == "step":
            checks += [br.range_check(c, 0, br.INT32_MAX) for c in (first, self.stop) if c]
        if self.start is not None:
            checks.append(br.order_check(self.start, self.stop))
        else:
            checks.append(br.min_check(self.duration, 0))
        if self.watch is not None:
            checks.append(br.min_check(self.watch, 0))
        return checks


def load_schema(schema: str | Path | Mapping[str, Any] | GenericSchema) -> GenericSchema:
    """A `GenericSchema` from itself, a mapping, or a YAML file (unknown keys rejected)."""
    if isinstance(schema, GenericSchema):
        schema.validate()
        return schema
    if isinstance(schema, (str, Path)):
        try:
            return from_dict(GenericSchema, load_yaml(schema))
        except ConfigError as exc:
            raise ConfigError(f"schema {schema}: {exc}") from None
    return from_dict(GenericSchema, dict(schema))


def is_parquet(path: Path) -> bool:
    with path.open("rb") as probe:
        return probe.read(4) == b"PAR1"


def _typed(good: pl.DataFrame, kinds: Mapping[str, str]) -> pl.DataFrame:
    return good.select("line", *[pl.col(f"_v_{c}").alias(c) for c in kinds])


def read_csv_table(path: Path, kinds: Mapping[str, str], checks: list[br.Check],
                   separator: str = ",") -> tuple[pl.DataFrame, pl.DataFrame]:
    """Checked, typed `kinds` columns (plus `line`) of a headed CSV, and its bad rows."""
    header = br.read_header(path, separator)
    doubled = sorted({c for c in header if header.count(c) > 1})
    if doubled:
        raise LogError(f"{path}: line 1 names column(s) {', '.join(doubled)} more than once")
    missing = [c for c in kinds if c not in header]
    if missing:
        raise LogError(f"{path}: missing column(s) {', '.join(missing)} "
                       f"(line 1 has: {', '.join(header)})")
    all_checks = [br.column_count_check(len(header)), br.nul_check(),
                  *br.field_checks(dict(kinds)), *checks]
    goods, bads = [], []
    for chunk in br.iter_lines(path):
        fields = br.split_fields(chunk, header, separator, skip_lines=1)
        fields = fields.with_columns(br.parse(c, k) for c, k in kinds.items())
        good, bad = br.first_failure(fields, all_checks, str(path))
        goods.append(_typed(good, kinds))
        bads.append(bad)
    good = pl.concat(goods) if goods else pl.DataFrame(
        schema={"line": pl.Int64, **{c: pl.String for c in kinds}})
    return _ids_as_integers(good, kinds), pl.concat([br.empty_bad_rows(), *bads])


def _ids_as_integers(frame: pl.DataFrame, kinds: Mapping[str, str]) -> pl.DataFrame:
    """Text id columns whose every value is an integer become Int64."""
    for column in (c for c, k in kinds.items() if k == "id"):
        if frame[column].dtype == pl.String:
            as_int = frame[column].str.to_integer(strict=False)
            if as_int.null_count() == 0:
                frame = frame.with_columns(as_int.alias(column))
    return frame


def read_parquet_table(path: Path, kinds: Mapping[str, str], checks: list[br.Check]
                       ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Like `read_csv_table` for Parquet; `line` is the 1-based row number."""
    schema = pl.read_parquet_schema(path)
    missing = [c for c in kinds if c not in schema]
    if missing:
        raise LogError(f"{path}: missing column(s) {', '.join(missing)} "
                       f"(the file has: {', '.join(schema)})")
    frame = pl.read_parquet(path, columns=list(kinds)).with_row_index("line", offset=1)
    frame = frame.with_columns(pl.col("line").cast(pl.Int64),
                               *[br.parse(c, k, schema[c]) for c, k in kinds.items()])
    all_checks = [*br.field_checks(dict(kinds), {c: schema[c] for c in kinds}), *checks]
    good, bad = br.first_failure(frame, all_checks, str(path))
    return _typed(good, kinds), bad


def read_table(path: str | Path, kinds: Mapping[str, str], checks: list[br.Check],
               separator: str = ",") -> tuple[pl.DataFrame, pl.DataFrame]:
    """Checked, typed columns of a CSV (with header, plain or gzipped) or Parquet file."""
    path = Path(path)
    br.require_file(path)
    if is_parquet(path):
        return read_parquet_table(path, kinds, checks)
    return read_csv_table(path, kinds, checks, separator)


def _step_times(schema: GenericSchema, frame: pl.DataFrame) -> tuple[pl.Expr, pl.Expr]:
    """`start`, `stop` step expressions (Int64) for the schema's time columns."""
    first = pl.col(schema.start or schema.timestamp)
    if schema.time_unit == "step":
        if schema.stop is not None:
            return first, pl.col(schema.stop)
        return first, first + pl.max_horizontal(pl.col(schema.duration).ceil(), 1)
    per_step = schema.step_minutes * MINUTES[schema.time_unit]
    per_day = MINUTES_PER_DAY * MINUTES[schema.time_unit]
    origin = math.floor(frame[schema.start or schema.timestamp].min() / per_day) * per_day
    begin = (first - origin) / per_step
    end = ((pl.col(schema.stop) if schema.stop is not None
            else first + pl.col(schema.duration)) - origin) / per_step
    start = begin.floor()
    return start, pl.max_horizontal(end.ceil(), start + 1)


def to_log(frame: pl.DataFrame, schema: GenericSchema, source: str,
           bad_rows: pl.DataFrame | None = None) -> InteractionLog:
    """An `InteractionLog` from checked, typed rows named as in `schema`."""
    if frame.height == 0:
        raise LogError(f"{source}: no interactions (the file is empty or every row is bad)")
    start, stop = _step_times(schema, frame)
    extra = []
    if schema.watch is not None:
        extra.append((pl.col(schema.watch) / MINUTES[schema.watch_unit]).alias("watch"))
    if schema.value is not None:
        extra.append(pl.col(schema.value).alias("value"))
    raw = frame.select(pl.col(schema.user).alias("user"), pl.col(schema.item).alias("item"),
                       start.cast(pl.Int64).alias("start"), stop.cast(pl.Int64).alias("stop"),
                       *extra)
    too_late = raw.filter(pl.col("stop") > br.INT32_MAX)
    if too_late.height:
        raise LogError(f"{source}: times span more than 2^31 steps of {schema.step_minutes:g}"
                       " min; check time_unit")
    log = from_raw(raw, step_minutes=schema.step_minutes, source=source)
    return replace(log, bad_rows=bad_rows)


def screen_rows(frame: pl.DataFrame, schema: GenericSchema, file: str, on_bad_rows: str,
                columns: list[str] | None = None) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Drop (or refuse, per `on_bad_rows`) the rows of checked `frame` that lie far outside
    the others' time range or copy an earlier line in every one of `columns` (default: the
    schema's), see `liveq.data.sanity`. Returns the rows kept and the bad rows to keep."""
    if frame.height == 0:
        return frame, None
    columns = list(schema.kinds()) if columns is None else columns
    start, stop = _step_times(schema, frame)
    steps = mark_copies(frame.select("line", *columns, start.cast(pl.Int64).alias("_start"),
                                     stop.cast(pl.Int64).alias("_stop")), columns)
    bulk = time_range(steps["_start"], MINUTES_PER_DAY / schema.step_minutes)
    checks = [far_check(bulk, "_start", "_stop"), duplicate_check()]
    _, bad = br.first_failure(steps, checks, file)
    kept = br.handle_bad_rows(bad, on_bad_rows, file)
    if bad.height:
        frame = frame.filter(~pl.col("line").is_in(bad["line"].implode()))
    return frame, kept


def joined_bad_rows(*bad_rows: pl.DataFrame | None) -> pl.DataFrame | None:
    present = [b for b in bad_rows if b is not None]
    return pl.concat(present) if present else None


def load_generic(path: str | Path, schema: Any, on_bad_rows: str = "error") -> InteractionLog:
    """Read a CSV or Parquet log described by `schema` (see the module docstring)."""
    br.check_on_bad_rows(on_bad_rows)
    schema = load_schema(schema)
    frame, bad = read_table(path, schema.kinds(), schema.checks(), schema.separator)
    kept = br.handle_bad_rows(bad, on_bad_rows, str(path))
    frame, screened = screen_rows(frame, schema, str(path), on_bad_rows)
    return to_log(frame, schema, str(path), joined_bad_rows(kept, screened))


def write_generic(raw: pl.DataFrame, out: str | Path, step_minutes: float) -> Path:
    """Write synthetic rows as Parquet (or CSV for a `.csv` path) with a schema YAML beside
    it (`<name>.schema.yaml`); returns the schema's path. A `propensity` column (the
    behaviour policy's probability of showing the row's streamer) is kept when present."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = raw.select(pl.col("user"), pl.col("item").alias("streamer"),
                      pl.col("stream").alias("broadcast"), "start", "stop",
                      pl.col("watch").alias("watch_minutes"), pl.col("value").alias("gifts"),
                      *(["propensity"] if "propensity" in raw.columns else []))
    if out.suffix == ".csv":
        rows.write_csv(out)
    else:
        rows.write_parquet(out)
    schema_path = out.with_suffix(".schema.yaml")
    save_yaml({"user": "user", "item": "streamer", "start": "start", "stop": "stop",
               "watch": "watch_minutes", "value": "gifts", "time_unit": "step",
               "step_minutes": float(step_minutes)}, schema_path)
    return schema_path
