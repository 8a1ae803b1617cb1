"""What `liveq tune` leaves in its folder, read from the study (either backend):

```
trials.json   every trial: state, objective, settings, per-world scores, running
              objective at each evaluation, seconds, run folder; the best trial
trials.csv    the same, one row per trial, one column per setting and per world's score
best.yaml     the best trial's complete run config, for `liveq train --config best.yaml`
search.png    objective by trial with the best so far; each setting against the objective
```
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter

from liveq.core.report import save_json
from liveq.experiments.tune_objective import BASELINE_LABEL, Search
from liveq.experiments.tune_space import Param, decode

SHOWN = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
         optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING)


def trial_records(study: optuna.Study, search: Search) -> list[dict[str, Any]]:
    """One plain record per trial that has started. Only a complete trial has an
    objective (Optuna stores a pruned trial's last running objective as its value; here
    it stays in `intermediate`)."""
    records = []
    for t in study.get_trials(deepcopy=False, states=SHOWN):
        seconds = None
        if t.datetime_start and t.datetime_complete:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds()
        records.append({
            "number": t.number, "state": t.state.name.lower(),
            "objective": t.value if t.state == optuna.trial.TrialState.COMPLETE else None,
            "params": decode(search.params, t.params),
            "worlds": t.user_attrs.get("worlds", {}),
            "intermediate": [[step, value] for step, value
                             in sorted(t.intermediate_values.items())],
            "seconds": seconds, "retry_of": t.user_attrs.get("retry_of"),
            "run": str(search.trial_dir(t.number))})
    return records


def write_csv(records: list[dict[str, Any]], search: Search, path: Path) -> None:
    keys = [p.key for p in search.params]
    worlds = list(search.worlds)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "state", "objective", "seconds", *keys,
                         *(f"score_{w}" for w in worlds)])
        for r in records:
            params = [json.dumps(v) if isinstance(v, list) else v
                      for v in (r["params"].get(k, "") for k in keys)]
            scores = [r["worlds"].get(w, {}).get("score", "") for w in worlds]
            writer.writerow([r["number"], r["state"], r["objective"], r["seconds"], *params,
                             *scores])


def write_best(best: dict[str, Any], search: Search, n_trials: int, path: Path) -> None:
    """The best trial's run config, with a comment saying where it came from."""
    header = (f"# liveq tune: best of {n_trials} trials (trial {best['number']}, objective "
              f"{best['objective']:.4f} = mean over {', '.join(search.worlds)} of return / "
              f"{BASELINE_LABEL}'s)\n")
    path.write_text(header + yaml.safe_dump(search.best_config(best["params"]),
                                            sort_keys=False))


def _history(ax: Any, records: list[dict[str, Any]]) -> None:
    done = [r for r in records if r["state"] == "complete"]
    pruned = [r for r in records if r["state"] == "pruned" and r["intermediate"]]
    if pruned:
        ax.scatter([r["number"] for r in pruned], [r["intermediate"][-1][1] for r in pruned],
                   marker="x", color="grey", label="pruned (last running objective)")
    if done:
        numbers = np.array([r["number"] for r in done])
        values = np.array([r["objective"] for r in done])
        ax.scatter(numbers, values, color="tab:blue", label="complete")
        ax.step(numbers, np.maximum.accumulate(values), where="post", color="tab:red",
                label="best so far")
    ax.axhline(1.0, linestyle=":", color="black", label=f"{BASELINE_LABEL} (= 1)")
    ax.set(xlabel="trial", ylabel=f"objective (return / {BASELINE_LABEL}'s)",
           title="Optimisation history")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small")


def _param_panel(ax: Any, p: Param, records: list[dict[str, Any]]) -> None:
    done = [r for r in records if r["state"] == "complete" and p.key in r["params"]]
    y = [r["objective"] for r in done]
    if p.kind == "categorical":
        labels = p.labels()
        x = [labels.index(json.dumps(v) if isinstance(v, list) else v)
             for v in (r["params"][p.key] for r in done)]
        ax.set_xticks(range(len(labels)), [str(c) for c in p.choices])
        ax.set_xlim(-0.5, len(labels) - 0.5)
    else:
        x = [r["params"][p.key] for r in done]
        if p.log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
    ax.scatter(x, y, color="tab:blue")
    if y:
        best = int(np.argmax(y))
        ax.scatter([x[best]], [y[best]], marker="*", s=160, color="tab:red", label="best")
        ax.legend(fontsize="small")
    ax.set(xlabel=p.key, ylabel="objective")


def plot_search(records: list[dict[str, Any]], search: Search, path: Path) -> None:
    """search.png: the history panel, then one panel per searched setting."""
    panels = 1 + len(search.params)
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(4.6 * cols, 3.4 * rows))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(panels)]
    _history(axes[0], records)
    for ax, p in zip(axes[1:], search.params, strict=True):
        _param_panel(ax, p, records)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_outputs(study: optuna.Study, search: Search) -> dict[str, Any]:
    """Write trials.json, trials.csv, best.yaml (when a trial completed) and search.png
    into the search's folder; returns the trials.json content."""
    out = search.out
    records = trial_records(study, search)
    complete = [r for r in records if r["state"] == "complete"]
    best = max(complete, key=lambda r: r["objective"]) if complete else None
    summary = {"study": study.study_name, "worlds": list(search.worlds),
               "counts": dict(Counter(r["state"] for r in records)),
               "best": best and {"number": best["number"], "objective": best["objective"],
                                 "params": best["params"], "config": str(out / "best.yaml")},
               "trials": records}
    save_json(summary, out / "trials.json")
    write_csv(records, search, out / "trials.csv")
    if best is not None:
        write_best(best, search, len(records), out / "best.yaml")
    plot_search(records, search, out / "search.png")
    return summary


def summary_line(summary: dict[str, Any]) -> str:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(summary["counts"].items()))
    best = summary["best"]
    if best is None:
        return f"trials: {counts or 'none'}; no trial completed, so no best.yaml"
    settings = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in best["params"].items())
    return (f"trials: {counts}; best trial {best['number']}: objective "
            f"{best['objective']:.4f} -> {best['config']}\nbest settings: {settings}")
