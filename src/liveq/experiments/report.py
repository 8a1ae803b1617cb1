"""`liveq report RUN [RUN ...] --out report.html`: one self-contained HTML report of runs.

    inputs     run folders, folders of runs and compare.json files (report_runs);
               runs equal but for the seed form a group
    curves     evaluation return against env steps, mean over seeds, min-max shaded
    online     each run's greedy policy on common seeded sessions of its world
               (report_eval): metrics with 95% intervals per group, the Q-value of
               chosen actions, watch minutes per session, results by viewer segment
    given      compare.json metrics, `--ope` estimates beside the truth, `--ab` results
    out        report.html (figures embedded as base64 PNG) and report_files/*.png

Every input is checked before any policy plays, so a bad path costs no minutes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from liveq.core.config import require
from liveq.core.errors import UsageError
from liveq.core.report import check_output_dir, check_output_file
from liveq.experiments import report_html
from liveq.experiments.report_eval import Played, by_segment, play_run, pool, summary
from liveq.experiments.report_html import Section, paragraph
from liveq.experiments.report_runs import Inputs, find_inputs
from liveq.experiments.report_sections import (
    ab_section,
    check_ab,
    distributions_section,
    metrics_section,
    ope_rows,
    ope_section,
    runs_section,
    segments_section,
)
from liveq.train.loop import torch_threads


@dataclass(kw_only=True)
class ReportConfig:
    """What `liveq report` reads and writes."""

    runs: list[str] = field(default_factory=list)
    """Run folders, folders of runs, or compare.json files."""
    out: str = "report.html"
    """The HTML file to write; figures go to `<stem>_files/` beside it."""
    ope: str | None = None
    """JSON written by `liveq ope ... --json` (rows with estimate and truth)."""
    ab: str | None = None
    """JSON written by `liveq ab --json` or `liveq report ab --json`."""
    episodes: int = 512
    """Sessions each run's greedy policy plays for the online metrics (0: none)."""
    seed: int = 12345
    """Evaluation seed, the same for every run (common random numbers)."""
    force: bool = False
    """Overwrite an existing `out`."""

    def validate(self) -> None:
        require(bool(self.runs), "give at least one run folder, folder of runs or compare.json")
        require(self.episodes >= 0, f"--episodes must be >= 0, got {self.episodes}")
        require(self.seed >= 0, f"--seed must be >= 0, got {self.seed}")


class Report(NamedTuple):
    """What was written and the numbers the page shows."""

    out: Path
    figures: list[Path]  # the PNGs in <stem>_files/
    online: dict[str, dict[str, dict[str, float]]]  # group -> metric -> {mean, ci_*, n}
    segments: dict[str, dict[str, dict[str, Any]]]  # group -> segment -> summary
    q_mean: dict[str, float]  # Q-learner group -> mean Q of its chosen actions


def _read_json(path: str, flag: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{flag} {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{flag} {path}: not readable JSON ({exc})") from None


def check_out(cfg: ReportConfig) -> Path:
    """Refuse an `out` (or its figures folder) that cannot be written, before any work."""
    out = Path(cfg.out)
    check_output_file(out, "--out", force=cfg.force)
    check_output_dir(report_html.figures_dir(out), "--out figures folder")
    parent = out.absolute().parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: cannot write into {parent} (permission denied)")
    return out


def play_groups(inputs: Inputs, episodes: int, seed: int) -> dict[str, Played]:
    """Each group's sessions, pooled over its seeds (groups off the LiveStream world are
    left out)."""
    played = {}
    for label, runs in inputs.groups.items():
        parts = [p for run in runs if (p := play_run(run.path, episodes, seed)) is not None]
        if parts:
            played[label] = pool(parts)
    return played


def online_sections(played: dict[str, Played], report: Report, episodes: int,
                    seed: int) -> list[Section]:
    """Online metrics, distributions and segments of the groups that played."""
    note = (f"Each run's greedy policy (best checkpoint) played {episodes} sessions of its "
            f"world with evaluation seed {seed}; a group pools the sessions of its seeds.")
    q = {label: p.q_chosen for label, p in played.items() if p.q_chosen is not None}
    watch = {label: p.sessions["watch_minutes"] for label, p in played.items()}
    heavy = next(iter(played.values())).heavy_days
    return [metrics_section("Online metrics", note, report.online, "metrics.png"),
            distributions_section(q, watch), segments_section(report.segments, heavy)]


def build_report(cfg: ReportConfig) -> Report:
    """Check every input, play the runs, draw the figures and write the report."""
    cfg.validate()
    out = check_out(cfg)
    inputs = find_inputs(cfg.runs)
    ope = ope_rows(_read_json(cfg.ope, "--ope"), cfg.ope) if cfg.ope else None
    ab = check_ab(_read_json(cfg.ab, "--ab"), cfg.ab) if cfg.ab else None
    sections: list[Section] = []
    played: dict[str, Played] = {}
    if inputs.groups:
        sections.append(runs_section(inputs.groups))
        if cfg.episodes > 0:
            with torch_threads(1):  # small networks: one thread beats busy cores
                played = play_groups(inputs, cfg.episodes, cfg.seed)
    numbers = Report(out, [], {label: summary(p.sessions) for label, p in played.items()},
                     {label: by_segment(p.sessions) for label, p in played.items()},
                     {label: float(np.mean(p.q_chosen)) for label, p in played.items()
                      if p.q_chosen is not None})
    if played:
        sections += online_sections(played, numbers, cfg.episodes, cfg.seed)
    if inputs.compare:
        sections.append(metrics_section("Metrics from compare.json",
                                        "As `liveq compare` measured them.", inputs.compare,
                                        "compare.png"))
    if ope:
        sections.append(ope_section(ope, f"liveq ope output {Path(cfg.ope).name}"))
    if ab:
        sections.append(ab_section(ab, f"{Path(cfg.ab).name}"))
    intro = paragraph(f"Made by liveq report on {time.strftime('%Y-%m-%d %H:%M %Z')} from "
                      + ", ".join(cfg.runs) + ".")
    if inputs.groups and not played:
        intro += paragraph("No run plays the LiveStream simulator (or --episodes 0): no "
                           "online metrics, distributions or segments.")
    try:
        figures = report_html.write(out, "liveq report", intro, sections)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write the report ({exc.strerror})") from None
    return numbers._replace(figures=figures)
