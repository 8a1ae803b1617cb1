"""The figures of `liveq report`, drawn with matplotlib's Agg canvas into PNG bytes.

Every function takes plain numbers (no run folders, no HTML) and returns the PNG, so the
report builder decides where each figure goes and the figures can be tested alone.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from liveq.core.report import LABELS

DPI = 90
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (no metadata with a date, so reruns give equal files)."""
    FigureCanvasAgg(fig)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def floats(values: Sequence[Any]) -> np.ndarray:
    """`values` as float64, None (a JSON null: NaN or missing) as NaN."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def learning_curves(curves: dict[str, Any]) -> bytes:
    """Evaluation return against env steps: each group's mean over seeds, min-max shaded."""
    fig = Figure(figsize=(7, 3.8))
    ax = fig.add_subplot()
    for i, (label, c) in enumerate(curves.items()):
        colour = COLOURS[i % len(COLOURS)]
        ax.plot(c.steps, c.mean, marker="o", markersize=3, color=colour,
                label=f"{label} ({c.seeds} seed{'s' if c.seeds > 1 else ''})")
        if c.seeds > 1:
            ax.fill_between(c.steps, c.low, c.high, color=colour, alpha=0.2, linewidth=0)
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return / session")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)


def metric_bars(results: dict[str, dict[str, dict[str, float]]],
                metrics: Sequence[str]) -> bytes:
    """One panel per metric: each agent's mean with its 95% interval as an error bar."""
    fig = Figure(figsize=(2.4 * len(metrics) + 0.6, 3.2))
    names = list(results)
    for m, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), m + 1)
        entries = [results[n].get(metric) or {} for n in names]
        mean = floats([e.get("mean") for e in entries])
        low = floats([e.get("ci_low", e.get("mean")) for e in entries])
        high = floats([e.get("ci_high", e.get("mean")) for e in entries])
        x = np.arange(len(names))
        ax.bar(x, mean, color=[COLOURS[i % len(COLOURS)] for i in x], alpha=0.85)
        ax.errorbar(x, mean, yerr=[mean - low, high - mean], fmt="none", ecolor="black",
                    capsize=3)
        ax.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
        ax.set_title(LABELS.get(metric, metric), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    return png(fig)


def distributions(values: dict[str, np.ndarray], xlabel: str) -> bytes:
    """Overlaid density histograms of one quantity, one outline per agent."""
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    data = [np.asarray(v, dtype=np.float64) for v in values.values()]
    everything = np.concatenate(data) if data else np.zeros(1)
    bins = np.histogram_bin_edges(everything, bins=30)
    for i, (label, v) in enumerate(zip(values, data, strict=True)):
        ax.hist(v, bins=bins, density=True, histtype="step", linewidth=1.6,
                color=COLOURS[i % len(COLOURS)], label=f"{label} (mean {v.mean():.2f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)


def segment_bars(segments: dict[str, dict[str, dict[str, Any]]], metric: str,
                 order: Sequence[str]) -> bytes:
    """Grouped bars: per viewer segment, each agent's mean `metric` with its interval."""
    fig = Figure(figsize=(6.5, 3.2))
    ax = fig.add_subplot()
    names = list(segments)
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        entries = [segments[name].get(seg, {}).get(metric) for seg in order]
        mean = np.array([e["mean"] if e else np.nan for e in entries])
        err = np.array([[e["mean"] - e["ci_low"], e["ci_high"] - e["mean"]] if e
                        else [np.nan, np.nan] for e in entries]).T
        x = np.arange(len(order)) + (i - (len(names) - 1) / 2) * width
        ax.bar(x, mean, width=width, color=COLOURS[i % len(COLOURS)], alpha=0.85, label=name)
        ax.errorbar(x, mean, yerr=err, fmt="none", ecolor="black", capsize=2)
    ax.set_xticks(np.arange(len(order)), order)
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)


def estimates_beside_truth(rows: list[dict[str, Any]]) -> bytes:
    """OPE: each (target, estimator) estimate with its interval, the truth as a red bar."""
    fig = Figure(figsize=(6.5, 0.32 * len(rows) + 1.2))
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    est = floats([r["estimate"] for r in rows])
    low = np.where(np.isnan(low := floats([r.get("ci_low") for r in rows])), est, low)
    high = np.where(np.isnan(high := floats([r.get("ci_high") for r in rows])), est, high)
    ax.errorbar(est, y, xerr=[est - low, high - est], fmt="o", color=COLOURS[0], capsize=3,
                label="estimate, 95% CI")
    ax.scatter([r["truth"] for r in rows], y, marker="|", s=200, color="red", label="truth",
               zorder=3)
    ax.set_yticks(y, [r["label"] for r in rows], fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return png(fig)


def lifts(metrics: dict[str, dict[str, float]]) -> bytes:
    """A/B: relative lift of treatment over control per metric, with its 95% interval."""
    names = list(metrics)
    fig = Figure(figsize=(6, 0.4 * len(names) + 1.2))
    ax = fig.add_subplot()
    y = np.arange(len(names))[::-1]
    rel, low, high = (floats([metrics[n][key] for n in names]) * 100
                      for key in ("rel", "rel_low", "rel_high"))
    ax.errorbar(rel, y, xerr=[rel - low, high - rel], fmt="o", color=COLOURS[0], capsize=3)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(y, names)
    ax.set_xlabel("lift relative to control (%), 95% CI")
    ax.grid(axis="x", alpha=0.3)
    return png(fig)
