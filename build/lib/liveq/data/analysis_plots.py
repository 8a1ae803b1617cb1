"""PNG figures of `liveq data analyze`, drawn with matplotlib's Agg canvas (no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from liveq.data.analysis_metrics import Distribution
from liveq.data.churn import ChurnResult, roc_curve

COHORTS_DRAWN = 4


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_retention(table: np.ndarray, path: Path) -> None:
    """Retention curves of the first `COHORTS_DRAWN` daily cohorts."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for c in range(min(COHORTS_DRAWN, len(table))):
        curve = table[c][~np.isnan(table[c])]
        if len(curve):
            ax.plot(np.arange(len(curve)), curve, marker="o", label=f"new on day {c}")
    ax.set(xlabel="days after first visit", ylabel="share of cohort active",
           title="Retention by first-day cohort", ylim=(0, 1.05))
    ax.legend()
    _save(fig, path)


def plot_churn(result: ChurnResult, path: Path) -> None:
    """ROC curves on the test window: the model and days-since-last-visit alone."""
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    for scores, name, value in ((result.test_scores, "logistic model", result.auc),
                                (result.test_recency, "days since last visit",
                                 result.recency_auc)):
        fpr, tpr = roc_curve(scores, result.test_labels)
        ax.plot(fpr, tpr, label=f"{name} (AUC {value:.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate",
           title=f"Churn risk, test window ending day {result.test_window_end:.1f}")
    ax.legend(loc="lower right")
    _save(fig, path)


def plot_distribution(dist: Distribution, label: str, path: Path) -> None:
    """Histogram on log-spaced bins, with the mean and median marked."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    edges = np.asarray(dist.edges)
    ax.bar(edges[:-1], dist.counts, width=np.diff(edges), align="edge", edgecolor="white")
    ax.axvline(dist.median, color="black", linestyle="--", label=f"median {dist.median:.1f}")
    ax.axvline(dist.mean, color="red", linestyle=":", label=f"mean {dist.mean:.1f}")
    ax.set_xscale("log")
    ax.set(xlabel=label, ylabel="count", title=label.capitalize())
    ax.legend()
    _save(fig, path)


def plot_repeat_rate(rate: np.ndarray, path: Path) -> None:
    """Share of each day's spells that return to a streamer the viewer watched before."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(np.arange(len(rate)), rate, marker="o")
    ax.set(xlabel="day", ylabel="repeat share of spells", title="Repeat consumption per day",
           ylim=(0, 1.05))
    _save(fig, path)
