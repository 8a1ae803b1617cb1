"""Results as text tables, JSON and CSV, and the checks on where they are written.

`text_table` is the one fixed-width table layout of every command; `format_table`,
`write_json` and `write_csv` handle `{agent: {metric: {mean, ci_low, ci_high}}}`;
`to_json`/`save_json` write any result, with NaN and infinities as null (bare `NaN` is not
JSON) and numpy numbers as plain ones. `check_output_file` and `check_output_dir` refuse a
bad output path before a command spends minutes on work it could not save.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from liveq.core.errors import UsageError

Results = dict[str, dict[str, dict[str, float]]]

LABELS = {"return": "return/session", "watch_minutes": "watch min", "clicks": "clicks",
          "ctr": "CTR", "gifts": "gifts", "length": "length", "return_rate": "returns",
          "coverage": "coverage", "cold_start_share": "cold-start",
          "revenue": "revenue", "impressions": "ads", "cvr": "CVR", "roi": "ROI",
          "budget_spent": "budget spent", "pacing_error": "pacing err",
          "lost_minutes": "lost min", "purchases": "purchases", "cart_rate": "cart/click",
          "purchase_rate": "buy/click", "gift_value": "gift value", "comments": "comments",
          "follows": "follows", "prompts": "prompts", "early_leave": "early leave"}


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]],
               left: int | Sequence[int] = 1) -> str:
    """Fixed-width text under a dashed rule: columns in `left` (or the first `left`
    columns) left-aligned, the others right-aligned; trailing spaces stripped."""
    lefts = set(range(left)) if isinstance(left, int) else set(left)
    table = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i in lefts else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in table]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def _cell(entry: dict[str, float]) -> str:
    mean, low, high = entry["mean"], entry["ci_low"], entry["ci_high"]
    digits = 3 if abs(mean) < 10 else 1
    if low == high:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ±{(high - low) / 2:.{digits}f}"


def format_table(results: Results) -> str:
    """A fixed-width table, one row per agent, mean ± half-width of the 95% interval."""
    metrics = list(dict.fromkeys(m for r in results.values() for m in r))
    header = ["agent"] + [LABELS.get(m, m) for m in metrics]
    rows = [[name] + [_cell(r[m]) if m in r else "-" for m in metrics]
            for name, r in results.items()]
    return text_table(header, rows)


def json_ready(value: Any) -> Any:
    """`value` with numpy scalars and arrays as Python numbers and lists, tuples as lists,
    and every NaN or infinity as None."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: json_ready(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_ready(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def to_json(value: Any) -> str:
    """Indented JSON text of `value` (see `json_ready`), ending in a newline."""
    return json.dumps(json_ready(value), indent=2, allow_nan=False) + "\n"


def json_line(value: Any) -> str:
    """One-line JSON of `value` (see `json_ready`), for JSON-lines files; no newline."""
    return json.dumps(json_ready(value), allow_nan=False)


def save_json(value: Any, path: str | Path) -> None:
    """Write `to_json(value)` to `path`."""
    Path(path).write_text(to_json(value))


def _plain(results: Results) -> Results:
    return {agent: {metric: {k: v for k, v in entry.items() if k != "n"}
                    for metric, entry in metrics.items()} for agent, metrics in results.items()}


def write_json(results: Results, path: str | Path) -> None:
    save_json(_plain(results), path)


def write_csv(results: Results, path: str | Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["agent", "metric", "mean", "ci_low", "ci_high", "n"])
        for agent, metrics in results.items():
            for metric, e in metrics.items():
                writer.writerow([agent, metric, e["mean"], e["ci_low"], e["ci_high"],
                                 e.get("n", "")])


def check_output_file(path: str | Path | None, what: str, force: bool = False,
                      make_parents: bool = False) -> None:
    """Refuse, with a `UsageError` naming `what` (such as `--json`), an output file path
    that cannot be written: a folder, a missing parent folder (unless `make_parents`), a
    parent that is a file, or an existing file when `force` is False. None passes."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder; give the path of a file to write")
    if path.exists() and not force:
        raise UsageError(f"{what} {path} already exists; pass --force to overwrite it")
    _check_parent(path, what, make_parents)


def check_output_dir(path: str | Path, what: str) -> None:
    """Refuse an output folder path that is an existing file or lies under one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path} is an existing file; give a folder to write into")
    _check_parent(path, what, make_parents=True)


def _check_parent(path: Path, what: str, make_parents: bool) -> None:
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        raise UsageError(f"{what} {path}: {existing} is a file, not a folder")
    if existing != path.absolute().parent and not make_parents:
        raise UsageError(f"{what} {path}: folder {path.parent} does not exist")
