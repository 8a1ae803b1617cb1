"""`liveq serve`: the recommendation service under uvicorn.

The model and the database are checked before the server starts (a bad run folder or an
unreachable database is one line `liveq: error: ...`): the schema is migrated and the
run registered (and made live when no model is live) in this process, then uvicorn
starts the workers, each of which opens the already-migrated log.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import shutil
from pathlib import Path

import uvicorn

from liveq.serving.app import CONFIG_ENV
from liveq.serving.db import open_log
from liveq.serving.service import startup_model
from liveq.serving.settings import serve_config


def serve_command(args: argparse.Namespace) -> int:
    config = serve_config(
        model=args.model, db=args.db, state_dir=args.state_dir, host=args.host,
        port=args.port, workers=args.workers, api_key=args.api_key, epsilon=args.epsilon,
        temperature=args.temperature, log_sample=args.log_sample, myopic=args.myopic,
        max_body_bytes=args.max_body_bytes)
    Path(config.state_dir).mkdir(parents=True, exist_ok=True)
    engine = open_log(config.database_url())
    live = startup_model(engine, config.model)
    engine.dispose()
    print(f"liveq serve: model {live['version']} is {live['status']}; log at "
          f"{config.database_url().split('@')[-1]}; http://{config.host}:{config.port}",
          flush=True)
    os.environ[CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
    if config.workers > 1:
        metrics_dir = Path(config.state_dir) / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
    uvicorn.run("liveq.serving.app:app_from_environment", factory=True, host=config.host,
                port=config.port, workers=config.workers, log_level="warning",
                access_log=False, **_patient_supervisor())
    return 0


WORKER_HEALTHCHECK_S = 60


def _patient_supervisor() -> dict[str, int]:
    """uvicorn's supervisor kills a worker whose health thread has not answered a ping
    in 5 s. On a saturated shared machine a busy worker's thread waited longer than that
    (`liveq bench serve` saw a worker killed, and its requests in flight dropped, while
    the load average was 21), so it is given a minute where uvicorn lets it be set."""
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters:
        return {"timeout_worker_healthcheck": WORKER_HEALTHCHECK_S}
    return {}
