"""The inputs of `liveq report`: run folders, folders of runs, compare.json, and their groups.

A run folder is what `liveq train` writes (config.yaml, metrics.jsonl, checkpoints/). A
report input is a run folder, or a folder holding run folders (as `liveq compare --out`
writes, with the seeds of one config beside each other) and perhaps a `compare.json`.
Runs whose resolved configs are equal apart from `seed` (and the progress bar, which
changes nothing) form one group: a group's learning curve is the mean over its seeds
with the min-max band, and its online metrics pool the sessions of every seed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from liveq.core.config import load_yaml
from liveq.core.errors import UsageError
from liveq.train.run import read_metrics

IGNORED_KEYS = (("seed",), ("train", "progress"))
"""Config keys that do not make two runs different experiments."""


class Run(NamedTuple):
    """One run folder: its resolved config and every record of its metrics.jsonl."""

    path: Path
    config: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    @property
    def agent(self) -> str:
        return str(self.config.get("agent", {}).get("name", "?"))


class Inputs(NamedTuple):
    """Every run found, grouped, and every compare.json beside them."""

    groups: dict[str, list[Run]]  # label -> runs of one config, by seed
    compare: dict[str, dict[str, dict[str, float]]]  # agent -> metric -> {mean, ci_*}


def is_run(path: Path) -> bool:
    return (path / "config.yaml").is_file() and (path / "metrics.jsonl").is_file()


def read_run(path: Path) -> Run:
    """The run in folder `path` (a `UsageError` names what is missing or unreadable)."""
    try:
        config = load_yaml(path / "config.yaml")
        records = read_metrics(path)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"{path} is not a readable run folder ({exc})") from None
    return Run(path, config, records)


def read_compare(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """A `liveq compare --json` file: `{agent: {metric: {mean, ci_low, ci_high}}}`."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable compare.json ({exc})") from None
    well_formed = isinstance(data, dict) and all(
        isinstance(m, dict) and all(isinstance(e, dict) and "mean" in e for e in m.values())
        for m in data.values())
    if not well_formed:
        raise UsageError(f"{path}: not the JSON of `liveq compare --json` "
                         "({agent: {metric: {mean, ci_low, ci_high}}})")
    return data


def find_inputs(paths: Sequence[str | Path]) -> Inputs:
    """The runs and compare.json files named by the command line's RUN arguments."""
    runs: list[Run] = []
    compare: dict[str, dict[str, dict[str, float]]] = {}
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise UsageError(f"{path} does not exist")
        if path.is_file() and path.suffix == ".json":
            compare.update(read_compare(path))
            continue
        if not path.is_dir():
            raise UsageError(f"{path} is neither a run folder nor a compare.json")
        if is_run(path):
            runs.append(read_run(path))
            continue
        inner = sorted(p for p in path.iterdir() if p.is_dir() and is_run(p))
        if (path / "compare.json").is_file():
            compare.update(read_compare(path / "compare.json"))
        elif not inner:
            raise UsageError(f"{path} is not a run folder (no config.yaml and metrics.jsonl) "
                             "and holds no run folder or compare.json")
        runs += [read_run(p) for p in inner]
    return Inputs(group_runs(runs), compare)


def experiment_key(config: dict[str, Any]) -> str:
    """The config with the ignored keys removed, as canonical text."""
    stripped = copy.deepcopy(config)
    for keys in IGNORED_KEYS:
        parent = stripped
        for key in keys[:-1]:
            parent = parent.get(key, {}) if isinstance(parent, dict) else {}
        if isinstance(parent, dict):
            parent.pop(keys[-1], None)
    return json.dumps(stripped, sort_keys=True, default=str)


def group_runs(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs grouped by `experiment_key`, labelled by agent name (and, where two groups
    share an agent, by the first run's folder name); each group sorted by seed."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(experiment_key(run.config), []).append(run)
    members = [sorted(g, key=lambda r: (r.seed, str(r.path))) for g in groups.values()]
    agents = [g[0].agent for g in members]
    labelled: dict[str, list[Run]] = {}
    for group, agent in zip(members, agents, strict=True):
        label = agent if agents.count(agent) == 1 else f"{agent} ({group[0].path.name})"
        if label in labelled:
            label = f"{label} [{group[0].path}]"
        labelled[label] = group
    return labelled


class Curve(NamedTuple):
    """A group's evaluation return against env steps: mean, min and max over seeds."""

    steps: np.ndarray  # (points,) env steps evaluated by every seed
    mean: np.ndarray  # (points,)
    low: np.ndarray  # (points,)
    high: np.ndarray  # (points,)
    seeds: int


def learning_curve(runs: list[Run], metric: str = "eval/return") -> Curve | None:
    """The group's curve on the env steps every seed evaluated at (None: no evaluation)."""
    per_run = [{int(r["env_steps"]): float(r[metric]) for r in run.records
                if r.get(metric) is not None} for run in runs]
    common = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    if not common:
        return None
    values = np.array([[p[s] for s in common] for p in per_run])  # (seeds, points)
    return Curve(np.array(common), values.mean(axis=0), values.min(axis=0),
                 values.max(axis=0), len(runs))
