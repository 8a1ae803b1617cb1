"""Result tables: terminal text, JSON and CSV of `{agent: {metric: {mean, ci_low, ci_high}}}`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

Results = dict[str, dict[str, dict[str, float]]]

LABELS = {"return": "return/session", "watch_minutes": "watch min", "clicks": "clicks",
          "ctr": "CTR", "gifts": "gifts", "length": "length", "return_rate": "returns",
          "coverage": "coverage", "cold_start_share": "cold-start"}


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
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in [header, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _plain(results: Results) -> Results:
    return {agent: {metric: {k: v for k, v in entry.items() if k != "n"}
                    for metric, entry in metrics.items()} for agent, metrics in results.items()}


def write_json(results: Results, path: str | Path) -> None:
    Path(path).write_text(json.dumps(_plain(results), indent=2) + "\n")


def write_csv(results: Results, path: str | Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["agent", "metric", "mean", "ci_low", "ci_high", "n"])
        for agent, metrics in results.items():
            for metric, e in metrics.items():
                writer.writerow([agent, metric, e["mean"], e["ci_low"], e["ci_high"],
                                 e.get("n", "")])
