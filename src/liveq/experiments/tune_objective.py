"""The objective `liveq tune` maximises: training return relative to popular-now, averaged
over a family of worlds.

A trial trains its settings once in each world (same seed in every trial, so trials
differ only by their settings) and scores each world by

    score(world) = final evaluation return of the trained policy
                   / return of popular-now on the same evaluation sessions

and the trial by the mean score over worlds. Why divide: returns are in each world's own
units (clicks in `clicks_only`, a twentieth of a watch minute in `watch_only`, every
reward together in `default`) and on different scales (a larger catalogue, shorter
sessions), so a plain mean would let the world with the largest numbers choose the
settings. Divided by a fixed, untrained baseline measured on the same sessions (common
random numbers), each world's score is unitless ("1.3 = 30% more than ranking by current
viewers") and every world weighs the same. Popular-now needs no training, so it is
measured once per world and evaluation seed and cached in `<out>/baselines.json`.

The final evaluation, not the best one, scores a run: the best of several noisy
evaluations favours noisy settings. A run stopped by `NonFiniteError` (diverged) scores 0
in that world: it learned nothing usable, and the sampler should steer away from it
rather than ignore it. Each evaluation during training reports the running objective
(finished worlds' scores and the current world's latest, averaged) so a pruner can stop
a poor trial early; `report` raising (e.g. `optuna.TrialPruned`) stops the training
cleanly, its run folder closed.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liveq.core.config import ConfigError
from liveq.core.errors import NonFiniteError
from liveq.eval.online import make_online_evaluator
from liveq.experiments.tune_space import Param, set_key
from liveq.policies.baselines import make_baseline
from liveq.sim.vector import make_vec_env
from liveq.train.config import RunConfig, load_run_config
from liveq.train.loop import train

EVAL_ENVS = 64  # parallel sessions of an evaluation, as `liveq train` uses
BASELINE = "popular"
BASELINE_LABEL = "popular-now"

Report = Callable[[int, float], None]


@dataclass(frozen=True)
class Search:
    """Everything a trial needs, as plain data (so Ray can ship it to its workers)."""

    config: dict[str, Any]
    """The resolved run config the search starts from (best.yaml is it, tuned)."""
    worlds: dict[str, dict[str, Any]]
    """World name -> its resolved run config (the `config` with the world's env)."""
    params: list[Param]
    """The search space."""
    out: Path
    """Folder of the trials' run folders, baselines.json and the reports."""

    def trial_config(self, world: str, values: dict[str, Any]) -> RunConfig:
        """World `world`'s run config with the trial's values, without a progress bar."""
        data = copy.deepcopy(self.worlds[world])
        for key, value in values.items():
            data = set_key(data, key, value)
        data["train"]["progress"] = False
        return load_run_config(data)

    def best_config(self, values: dict[str, Any]) -> dict[str, Any]:
        """The search's own run config with `values`, ready for `liveq train`."""
        data = self.config
        for key, value in values.items():
            data = set_key(data, key, value)
        return data

    def trial_dir(self, number: int) -> Path:
        return self.out / "trials" / f"{number:04d}"


class Baselines:
    """Popular-now's mean return per (world, seed, episodes), computed once and kept in
    `<out>/baselines.json` (deterministic, so two processes that both compute one agree)."""

    def __init__(self, out: Path):
        self.path = out / "baselines.json"
        self.values: dict[str, float] = {}

    def get(self, world: str, config: RunConfig, episodes: int, seed: int) -> float:
        key = f"{world}/seed{seed}/episodes{episodes}"
        if key not in self.values and self.path.exists():
            self.values.update(json.loads(self.path.read_text()))
        if key not in self.values:
            value = baseline_return(config, episodes, seed)
            if value <= 0:
                raise ConfigError(f"world {world}: {BASELINE_LABEL}'s return is {value:.4g}; the "
                                  "objective divides by it and needs it positive")
            self.values[key] = value
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.values, indent=1, sort_keys=True))
            os.replace(tmp, self.path)
        return self.values[key]


def baseline_return(config: RunConfig, episodes: int, seed: int) -> float:
    """Popular-now's mean return on the sessions the training evaluator plays with `seed`
    (the same evaluator, so the same sessions)."""
    probe = make_vec_env(config.env.id, 1, config.env.kwargs)
    try:
        policy = make_baseline(BASELINE, probe, seed)
    finally:
        probe.close()
    evaluator = make_online_evaluator(config.env.id, config.env.kwargs, EVAL_ENVS)
    return float(evaluator(policy, episodes, seed)["return"])


@dataclass
class TrialScores:
    """The scores of one trial so far; `add_evaluation` reports the running objective."""

    report: Report
    done: list[float] = field(default_factory=list)
    evaluations: int = 0

    def add_evaluation(self, score: float) -> None:
        """Report the running objective as step 1, 2, ... (Ray Tune's training iterations)."""
        self.evaluations += 1
        self.report(self.evaluations, (sum(self.done) + score) / (len(self.done) + 1))


class ScoredEvaluator:
    """The online evaluator of one world, adding `normalised_return` (return over
    popular-now's) to each evaluation's metrics and passing it to the trial's scores."""

    def __init__(self, world: str, config: RunConfig, baselines: Baselines,
                 scores: TrialScores):
        self.world, self.config, self.baselines, self.scores = world, config, baselines, scores
        self.inner = make_online_evaluator(config.env.id, config.env.kwargs, EVAL_ENVS)
        self.last: dict[str, float] = {}

    def __call__(self, policy: Any, n_episodes: int, seed: int) -> dict[str, float]:
        metrics = self.inner(policy, n_episodes, seed)
        baseline = self.baselines.get(self.world, self.config, n_episodes, seed)
        metrics["baseline_return"] = baseline
        metrics["normalised_return"] = metrics["return"] / baseline
        self.last = metrics
        self.scores.add_evaluation(metrics["normalised_return"])
        return metrics


def run_trial(search: Search, values: dict[str, Any], number: int,
              report: Report) -> dict[str, Any]:
    """Train `values` in every world of `search` into `<out>/trials/<number>/<world>`;
    returns {"objective": mean score, "worlds": {world: {"score", "return", ...}}}."""
    scores, worlds = TrialScores(report), {}
    baselines = Baselines(search.out)
    for world in search.worlds:
        config = search.trial_config(world, values)
        evaluator = ScoredEvaluator(world, config, baselines, scores)
        run = search.trial_dir(number) / world
        try:
            train(config, run, evaluate=evaluator)
            entry = {"score": evaluator.last["normalised_return"],
                     "return": evaluator.last["return"],
                     "baseline_return": evaluator.last["baseline_return"]}
        except NonFiniteError as exc:
            entry = {"score": 0.0, "diverged": str(exc)}
        scores.done.append(entry["score"])
        worlds[world] = {**entry, "run": str(run)}
    return {"objective": sum(scores.done) / len(scores.done), "worlds": worlds}
