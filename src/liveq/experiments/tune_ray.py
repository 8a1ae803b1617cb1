"""`liveq tune --backend ray`: the same trials on Ray Tune (`pip install 'liveq[ray]'`).

The same search as the Optuna backend, with Ray running the trials in parallel:
Ray Tune's `OptunaSearch` draws each trial from the study (same storage, TPE sampler,
and `tune_space.suggest` as its define-by-run space, so the space is the same), each
trial runs `tune_objective.run_trial` in a Ray worker and reports the running objective
at every evaluation, and Ray's median stopping rule (the counterpart of Optuna's median
pruner) stops trials below the median. Results go back into the study, a trial stopped
early as pruned, so the reports, `best.yaml` and resuming work as with Optuna.

`address=None` starts a small local Ray instance (2 CPUs, no dashboard, workers' output
not forwarded); `auto` or `HOST:PORT` joins a running cluster, whose workers need liveq
installed and, for the trials' run folders, the same `--out` path on every node (a
shared file system) if the folders should all land in one place.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.schedulers import MedianStoppingRule
from ray.tune.search.optuna import OptunaSearch

from liveq.core.errors import UsageError
from liveq.experiments.tune_objective import Search, run_trial
from liveq.experiments.tune_space import Param, decode, suggest

METRIC = "objective"
LOCAL_CPUS = 2
NEVER = float("inf")  # training iterations (the rule starts each trial at -inf)


class StudySearch(OptunaSearch):
    """OptunaSearch that records a finished trial's per-world scores in the study, and a
    trial that stopped before its final report (the scheduler stopped it) as pruned."""

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if not result.get("final"):  # the final report repeats the last evaluation's value
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        final = bool(result and result.get("final"))
        if final:
            self._ot_trials[trial_id].set_user_attr("worlds", json.loads(result["worlds"]))
        super().on_trial_complete(trial_id, result if final else None, error)


def _space(params: list[Param], trial: Any) -> dict[str, Any]:
    """The define-by-run space: the shared `suggest`, plus the study's trial number so the
    worker names the run folders as the Optuna backend does."""
    suggest(trial, params)
    return {"trial_number": trial.number}


def _trainable(config: dict[str, Any], search: Search) -> None:
    """One trial in a Ray worker: the shared objective, reporting to Ray Tune."""
    stored = {k: v for k, v in config.items() if k != "trial_number"}

    def report(step: int, value: float) -> None:
        tune.report({METRIC: value, "evaluation": step})

    result = run_trial(search, decode(search.params, stored), config["trial_number"], report)
    tune.report({METRIC: result["objective"], "final": True,
                 "worlds": json.dumps(result["worlds"])})


def _init(address: str | None) -> bool:
    """Connect to Ray; True when this call started the local instance it must stop."""
    if ray.is_initialized():
        return False
    if address is None:
        ray.init(num_cpus=LOCAL_CPUS, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        return True
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except ConnectionError as exc:
        raise UsageError(f"--address {address}: no Ray cluster to join ({exc})") from None
    return False


def run_ray(search: Search, study: optuna.Study, storage: optuna.storages.BaseStorage,
            n_trials: int, *, address: str | None = None, prune: bool = True) -> None:
    """Run `n_trials` more trials of `study` on Ray Tune; results land in the study."""
    searcher = StudySearch(space=functools.partial(_space, search.params), metric=METRIC,
                           mode="max", sampler=study.sampler, study_name=study.study_name,
                           storage=storage)
    scheduler = None
    if prune:  # min_time_slice: never pause a trial for a waiting one, as the rule does
        # when it lacks samples: a paused function trial would start again from scratch
        scheduler = MedianStoppingRule(time_attr="training_iteration", metric=METRIC,
                                       mode="max", grace_period=1, min_samples_required=3,
                                       min_time_slice=NEVER)
    started = _init(address)
    try:
        tuner = tune.Tuner(
            tune.with_parameters(_trainable, search=search),
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                        num_samples=n_trials),
            run_config=tune.RunConfig(name=study.study_name, verbose=0,
                                      storage_path=str(search.out / "ray")))
        tuner.fit()
    finally:
        if started:
            ray.shutdown()
