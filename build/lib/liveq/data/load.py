"""`load_log`: one entry point for every interaction-log format liveq reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liveq.data.badrows import check_on_bad_rows
from liveq.data.log import InteractionLog, LogError

FORMATS = ("twitch", "kuailive", "generic")


def load_log(path: str | Path, format: str = "twitch", schema: Any = None,
             on_bad_rows: str = "error") -> InteractionLog:
    """Read an interaction log into an `InteractionLog`.

    format: `twitch` (headerless CSV, plain or gzipped), `kuailive` (the dataset folder)
    or `generic` (CSV or Parquet described by `schema`: a YAML path or a mapping, see
    `liveq.data.generic.GenericSchema`). on_bad_rows: `error` (raise `LogError` naming
    lines and reasons), `skip` (drop and count) or `report` (drop, list, and keep them on
    `InteractionLog.bad_rows`).
    """
    check_on_bad_rows(on_bad_rows)
    if format not in FORMATS:
        raise LogError(f"unknown log format {format!r}; choose from {', '.join(FORMATS)}")
    if schema is not None and format != "generic":
        raise LogError(f"a schema applies to the generic format only, not {format!r}")
    if format == "twitch":
        from liveq.data.twitch import load_twitch
        return load_twitch(path, on_bad_rows)
    if format == "kuailive":
        from liveq.data.kuailive import load_kuailive
        return load_kuailive(path, on_bad_rows=on_bad_rows)
    from liveq.data.generic import load_generic
    if schema is None:
        raise LogError("the generic format needs a schema (YAML file or mapping of columns)")
    return load_generic(path, schema, on_bad_rows)
