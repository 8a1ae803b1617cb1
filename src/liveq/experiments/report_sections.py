"""The sections of `liveq report`, each a heading, a table or text, and its figures.

Also the readers of the optional inputs: `liveq ope --json` output (any of its sources
whose rows carry the truth) and `liveq ab --json` / `liveq report ab --json` output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from liveq.core.errors import UsageError
from liveq.core.report import LABELS
from liveq.experiments import report_plots as plots
from liveq.experiments.report_eval import SEGMENTS
from liveq.experiments.report_html import Figure, Section, interval, paragraph, table
from liveq.experiments.report_runs import Run, learning_curve

METRICS = ("return", "watch_minutes", "clicks", "ctr", "return_rate")
OPE_ROW_KEYS = ("per_seed", "ope", "rows", "summary")  # sim, offline-rl, obd, gate
OPE_LABEL_KEYS = ("scenario", "role", "target", "policy")


def runs_section(groups: dict[str, list[Run]]) -> Section:
    """Which runs form which group, and the learning curves."""
    rows = [[label, runs[0].agent, len(runs), ", ".join(str(r.path) for r in runs),
             max((int(x["env_steps"]) for x in runs[0].records), default=0)]
            for label, runs in groups.items()]
    body = paragraph("Runs whose configs differ only by seed form one group.") + table(
        ["group", "agent", "seeds", "run folders", "env steps"], rows)
    curves = {label: c for label, runs in groups.items()
              if (c := learning_curve(runs)) is not None}
    figures = []
    if curves:
        figures.append(Figure("learning_curves.png", plots.learning_curves(curves),
                              "Evaluation return per session against env steps: mean over "
                              "a group's seeds, min-max over seeds shaded."))
    else:
        body += paragraph("No run has evaluation records (eval/return) to draw.")
    return Section("Runs and learning curves", body, figures)


def metrics_section(title: str, note: str, results: dict[str, dict[str, dict[str, float]]],
                    name: str) -> Section:
    """A table of each agent's metrics with 95% intervals, and the bar chart."""
    metrics = [m for m in METRICS if any(m in r for r in results.values())]
    rows = [[agent, *(interval(r.get(m)) for m in metrics)] for agent, r in results.items()]
    body = paragraph(note) + table(["agent", *(LABELS.get(m, m) for m in metrics)], rows)
    return Section(title, body, [Figure(name, plots.metric_bars(results, metrics),
                                        f"{title}: mean with 95% interval.")])


def distributions_section(q_values: dict[str, np.ndarray],
                          watch: dict[str, np.ndarray]) -> Section:
    """The Q-value of the chosen action (Q-learners) and watch minutes per session."""
    figures = []
    if q_values:
        figures.append(Figure("q_values.png", plots.distributions(q_values, "Q of the chosen "
                                                                  "action"),
                              "Q-value of the action each Q-learner chose, every step."))
    figures.append(Figure("watch_minutes.png", plots.distributions(watch, "watch minutes "
                                                                   "per session"),
                          "Watch minutes per session."))
    note = ("Q-learners (off-policy learners acting greedily on a Q-network): "
            + (", ".join(q_values) if q_values else "none among the runs") + ".")
    return Section("Distributions", paragraph(note), figures)


def segments_section(segments: dict[str, dict[str, dict[str, Any]]], heavy_days: int) -> Section:
    """Per viewer segment: share of sessions and the metrics, per agent."""
    rows = []
    for agent, parts in segments.items():
        for seg in SEGMENTS:
            if seg in parts:
                p = parts[seg]
                rows.append([agent, seg, p["sessions"], f"{p['share']:.1%}",
                             *(interval(p[m]) for m in ("return", "watch_minutes", "clicks",
                                                        "return_rate"))])
    note = (f"A session's viewer segment comes from the viewer's days active before it, as "
            f"the simulator knows them: new = 0 days (no history), returning = 1 to "
            f"{heavy_days - 1} days, heavy = {heavy_days} days or more ({heavy_days} = "
            "ceil(1 / viewer_traits.veteran_days_p), the mean days of the veterans the "
            "world starts with). A viewer who comes back adds a day.")
    body = paragraph(note) + table(["agent", "segment", "sessions", "share", "return/session",
                                    "watch min", "clicks", "returns"], rows)
    return Section("Results by viewer segment", body, [
        Figure("segments.png", plots.segment_bars(segments, "return", SEGMENTS),
               "Return per session by viewer segment, 95% intervals.")])


# ------------------------------------------------------------------ OPE
def ope_rows(data: Any, path: str | Path) -> list[dict[str, Any]]:
    """The rows of a `liveq ope --json` output that hold an estimate and the truth; for
    `sim`, those of the first seed (the summary keeps only bias and RMSE)."""
    if isinstance(data, dict):
        for key in OPE_ROW_KEYS:
            rows = data.get(key)
            if not isinstance(rows, list) or not rows:
                continue
            if key == "per_seed":
                rows = [r for r in rows if r.get("seed") == rows[0].get("seed")]
            usable = [r for r in rows if isinstance(r, dict) and r.get("estimator")
                      and _number(r.get("estimate")) and _number(r.get("truth"))]
            if usable:
                return [{**r, "label": " / ".join([*(str(r[k]) for k in OPE_LABEL_KEYS
                                                     if k in r), str(r["estimator"])])}
                        for r in usable]
    raise UsageError(f"--ope {path}: no rows with an estimate beside the truth; give the "
                     "--json of `liveq ope sim`, `ope obd`, `ope offline-rl` or `ope gate`")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def ope_section(rows: list[dict[str, Any]], source: str) -> Section:
    def cell(r: dict[str, Any], key: str) -> str:
        return f"{r[key]:.4f}" if _number(r.get(key)) else "-"

    body = paragraph(f"Off-policy estimates from {source} beside the truth the simulator "
                     "knows.") + table(
        ["target / estimator", "estimate", "95% CI low", "95% CI high", "truth", "error"],
        [[r["label"], cell(r, "estimate"), cell(r, "ci_low"), cell(r, "ci_high"),
          cell(r, "truth"), f"{r['estimate'] - r['truth']:+.4f}"] for r in rows])
    return Section("Off-policy estimates beside the truth", body, [
        Figure("ope.png", plots.estimates_beside_truth(rows),
               "Each estimate with its 95% interval; the red bar is the truth.")])


# ------------------------------------------------------------------ A/B
def check_ab(data: Any, path: str | Path) -> dict[str, Any]:
    """A `liveq ab --json` (or `liveq report ab --json`) result, checked."""
    ok = (isinstance(data, dict) and isinstance(data.get("metrics"), dict) and data["metrics"]
          and all(isinstance(e, dict) and {"control", "treatment", "diff", "ci_low",
                                           "ci_high", "rel", "rel_low", "rel_high", "p"}
                  <= set(e) for e in data["metrics"].values()))
    if not ok:
        raise UsageError(f"--ab {path}: not the JSON of `liveq ab --json` or "
                         "`liveq report ab --json` (metrics with lift, CI and p-value)")
    return data


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if _number(value) else "-"


def _ab_notes(result: dict[str, Any]) -> str:
    """CUPED's adjusted lift and the power check, as paragraphs."""
    c, p, body = result.get("cuped"), result.get("power"), ""
    if c:
        body += paragraph(f"CUPED: lift {_num(c.get('diff'), '+.4g')} "
                          f"[{_num(c.get('ci_low'), '+.4g')}, {_num(c.get('ci_high'), '+.4g')}]"
                          f", p {_num(c.get('p'), '.3g')}, variance reduced by "
                          f"{_num(c.get('variance_reduction'), '.1%')}.")
    if p:
        body += paragraph(f"Viewers needed per arm for the minimum detectable effect: "
                          f"{p.get('needed_per_arm')} ({p.get('needed_per_arm_cuped')} with "
                          f"CUPED); smallest arm {p.get('smallest_arm')}.")
        if p.get("underpowered"):
            body += paragraph("Underpowered: the smallest arm is below the size needed.",
                              "warn")
    return body


def ab_section(result: dict[str, Any], source: str) -> Section:
    """Per metric: arms, lift with CI, relative lift, p-values; CUPED and power notes."""
    rows = [[name, _num(e["control"], ".4g"), _num(e["treatment"], ".4g"),
             _num(e["diff"], "+.4g"), f"[{_num(e['ci_low'], '+.4g')}, "
             f"{_num(e['ci_high'], '+.4g')}]", _num(e["rel"], "+.2%"), _num(e["p"], ".3g"),
             _num(e.get("bootstrap", {}).get("p"), ".3g")]
            for name, e in result["metrics"].items()]
    arms = result.get("arms")
    which = f": arm {arms['treatment']} against {arms['control']}" if arms else ""
    body = paragraph(f"A/B test from {source}{which}.") + table(
        ["metric", "control", "treatment", "lift", "95% CI", "relative", "p (Welch)",
         "p (bootstrap)"], rows) + _ab_notes(result)
    return Section("A/B test", body, [Figure("ab.png", plots.lifts(result["metrics"]),
                                             "Relative lift per metric with its 95% interval.")])
