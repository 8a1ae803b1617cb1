"""`liveq tune`: hyperparameter search with Optuna, on one machine or on Ray Tune.

    liveq tune --config livestream_default --space space_dqn --trials 50
    liveq tune --config livestream_small --worlds default,clicks_only,large --trials 20
    liveq tune ... --backend ray --address auto

Optuna's TPE sampler draws each trial's settings from the space
(`liveq.experiments.tune_space`); the trial trains them in each world and is scored by
`liveq.experiments.tune_objective` (return over popular-now's, averaged over the worlds).
Every evaluation during training reports the running objective, and the median pruner
stops a trial whose running objective is below the median of earlier trials at the
same evaluation. With `--backend ray` the same trials (same space, objective and study)
run on Ray Tune (`liveq.experiments.tune_ray`), pruned by Ray's median stopping rule.

The study lives in SQLite (`<out>/study.db`, or any Optuna storage URL), so re-running
the same command continues an interrupted search: finished trials (complete or pruned)
are kept, a trial that was running or crashed is run again first with the same
settings, and new trials are added until the requested total is finished. The study
remembers its config, worlds and space; resuming with different ones is refused. The
sampler is seeded from `--seed` and the number of trials already in the study, so a
search (and each resumption) is reproducible without redrawing its first points. Only
one process should drive a study at a time (for parallel trials use `--backend ray`).

Outputs in `--out`: `trials/<number>/<world>/` (each a run folder with its config.yaml),
`trials.csv` and `trials.json`, `best.yaml` (the best trial's complete run config, ready
for `liveq train --config`), and `search.png` (`liveq.experiments.tune_report`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna

from liveq.core.config import ConfigError, load_yaml, require
from liveq.core.errors import UsageError
from liveq.experiments.tune_objective import Search, run_trial
from liveq.experiments.tune_report import summary_line, write_outputs
from liveq.experiments.tune_space import check_against, load_space, suggest
from liveq.experiments.world_family import WORLDS, world_config
from liveq.policies.baselines import baseline_fits
from liveq.train.config import load_run_config, run_config_dict

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@dataclass(kw_only=True)
class TuneConfig:
    """One search: where it starts, what it varies, how long, where it is kept."""

    config: str = "livestream_default"
    """Run config (YAML path or shipped name) the search starts from."""
    space: str = "space_dqn"
    """Search space YAML (path or shipped name)."""
    worlds: list[str] = field(default_factory=list)
    """Worlds of liveq.experiments.world_family to average over; empty = the config alone."""
    trials: int = 20
    """Finished trials the study should hold in the end (resuming counts earlier ones)."""
    out: str = "runs/tune"
    """Folder of the study, the trials' run folders and the reports."""
    storage: str | None = None
    """Optuna storage URL; null = sqlite:///<out>/study.db."""
    study_name: str = "liveq-tune"
    """Name of the study inside the storage."""
    seed: int | None = None
    """Seed of every trial's runs and of the sampler; null = the run config's seed."""
    steps: int | None = None
    """Override train.total_env_steps of every trial; null = the config's."""
    backend: Literal["optuna", "ray"] = "optuna"
    """optuna: trials one after another here; ray: the same trials on Ray Tune."""
    address: str | None = None
    """Ray cluster address (auto, HOST:PORT); null = a small local Ray instance."""
    prune: bool = True
    """Stop trials below the median at an evaluation (Optuna's median pruner; on Ray its
    median stopping rule); false = every trial trains in every world."""

    def validate(self) -> None:
        require(self.trials >= 1, f"trials must be at least 1, got {self.trials}")
        require(self.steps is None or self.steps >= 1,
                f"steps must be at least 1, got {self.steps}")
        require(self.seed is None or self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        require(bool(self.study_name), "study_name must not be empty")
        for world in self.worlds:
            require(world in WORLDS, f"worlds: unknown world {world!r}; choose from "
                    f"{', '.join(WORLDS)}")
        require(len(set(self.worlds)) == len(self.worlds), f"worlds repeat: {self.worlds}")
        require(self.address is None or self.backend == "ray",
                "address is only used with backend ray")

    def storage_url(self) -> str:
        if self.storage:
            return self.storage
        return f"sqlite:///{(Path(self.out) / 'study.db').absolute()}"


def _overridden(data: dict[str, Any], cfg: TuneConfig) -> dict[str, Any]:
    """A resolved run-config dict with the search's seed and step overrides."""
    if cfg.seed is not None:
        data["seed"] = cfg.seed
    if cfg.steps is not None:
        data.setdefault("train", {})["total_env_steps"] = cfg.steps
    return run_config_dict(load_run_config(data))


def build_search(cfg: TuneConfig) -> Search:
    """The worlds' run configs and the space, checked against the run config."""
    config = _overridden(load_yaml(cfg.config), cfg)
    if not baseline_fits("popular", config["env"]["id"]):
        raise ConfigError(f"{cfg.config}: liveq tune scores runs against popular-now, which "
                          f"needs a liveq/LiveStream env, not {config['env']['id']}")
    names = cfg.worlds or ["default"]
    worlds = {name: _overridden(world_config(name, base=cfg.config), cfg) for name in names}
    params = load_space(cfg.space)
    check_against(params, config, load_run_config)
    return Search(config=config, worlds=worlds, params=params, out=Path(cfg.out).absolute())


def _identity(search: Search) -> dict[str, Any]:
    """What a resumed study must share with the search that created it (as JSON data)."""
    space = [{"key": p.key, **p.as_data()} for p in search.params]
    return json.loads(json.dumps({"config": search.config, "worlds": list(search.worlds),
                                  "space": space}))


def open_study(cfg: TuneConfig, search: Search,
               pruner: optuna.pruners.BasePruner | None = None
               ) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
    """Create the study or load it to resume (with its storage): refuse one made by
    another search, and queue again the trials an interruption or crash left unfinished."""
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.get_storage(cfg.storage_url())
    if pruner is None:
        pruner = optuna.pruners.MedianPruner() if cfg.prune else optuna.pruners.NopPruner()
    study = optuna.create_study(storage=storage, study_name=cfg.study_name,
                                direction="maximize", load_if_exists=True, pruner=pruner)
    identity, saved = _identity(search), study.user_attrs.get("search")
    if saved is None:
        study.set_user_attr("search", identity)
    else:
        changed = [k for k in identity if saved.get(k) != identity[k]]
        if changed:
            raise ConfigError(f"study {cfg.study_name!r} in {cfg.storage_url()} was made "
                              f"with another {' and '.join(changed)}; resume it with the "
                              "same arguments, or start a new --out or --study-name")
    _requeue_unfinished(study, storage)
    seed = search.config["seed"]
    state = np.random.SeedSequence([seed, len(study.trials)]).generate_state(1)[0]
    study.sampler = optuna.samplers.TPESampler(seed=int(state))
    return study, storage


def _requeue_unfinished(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """Mark trials left running by a stopped process as failed, and queue every failed
    trial's settings once more (a study attribute lists those already queued)."""
    queued = set(study.user_attrs.get("requeued", []))
    running, failed = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.FAIL
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(running, failed)):
        if trial.state == running:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            storage.set_trial_state_values(trial_id, failed)
        if trial.number not in queued:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            queued.add(trial.number)
    study.set_user_attr("requeued", sorted(queued))


def remaining(study: optuna.Study, total: int) -> int:
    """Trials still to run before the study holds `total` finished ones."""
    return max(0, total - len(study.get_trials(deepcopy=False, states=FINISHED)))


def optuna_objective(search: Search, say: Callable[[str], None] = print):
    """The objective for `study.optimize`: draw, train in every world, report, score."""

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, search.params)

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"running objective {value:.3f} at evaluation "
                                         f"{step}")

        started = time.perf_counter()
        try:
            result = run_trial(search, values, trial.number, report)
        except optuna.TrialPruned as exc:
            say(f"trial {trial.number}: pruned ({exc}; {time.perf_counter() - started:.0f} s)")
            raise
        trial.set_user_attr("worlds", result["worlds"])
        scores = ", ".join(f"{w} {r['score']:.3f}" for w, r in result["worlds"].items())
        say(f"trial {trial.number}: objective {result['objective']:.3f} ({scores}; "
            f"{time.perf_counter() - started:.0f} s)")
        return result["objective"]

    return objective


def tune(cfg: TuneConfig, *, pruner: optuna.pruners.BasePruner | None = None,
         say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) the search to `cfg.trials` finished trials and write its outputs;
    returns the summary written into trials.json."""
    search = build_search(cfg)
    if cfg.backend == "ray":
        backend = _ray_backend()  # fail fast, before any study is made
    study, storage = open_study(cfg, search, pruner)
    todo = remaining(study, cfg.trials)
    say(f"study {cfg.study_name!r} in {cfg.storage_url()}: "
        f"{cfg.trials - todo} finished trials, {todo} to run on {cfg.backend}")
    if todo and cfg.backend == "ray":
        backend.run_ray(search, study, storage, todo, address=cfg.address, prune=cfg.prune)
    elif todo:
        study.optimize(optuna_objective(search, say), n_trials=todo)
    summary = write_outputs(study, search)
    say(summary_line(summary))
    return summary


def _ray_backend():
    """The Ray Tune backend module, or a `UsageError` saying how to install it."""
    try:
        from liveq.experiments import tune_ray
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "ray":
            raise
        raise UsageError("--backend ray needs Ray Tune: pip install 'liveq[ray]'") from None
    return tune_ray
