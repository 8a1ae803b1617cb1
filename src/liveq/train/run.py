"""The run folder: resolved config, metadata, metrics as JSON lines, TensorBoard events.

```
out_dir/
  config.yaml          resolved RunConfig (every default filled in)
  meta.json            seed, package versions, start time, resume times
  metrics.jsonl        one JSON object per log or evaluation point
  tensorboard/         SummaryWriter event files, tags = metrics.jsonl keys
  checkpoints/latest.pt, checkpoints/best.pt
```
Metric keys are prefixed by kind (`train/loss`, `eval/return`); every record also holds
`env_steps` and `updates`. On resume, records written after the checkpoint being resumed
are dropped, so metrics.jsonl reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

import liveq
from liveq.core.config import ConfigError, save_yaml
from liveq.core.report import json_line, save_json
from liveq.train.config import RunConfig, run_config_dict


def versions() -> dict[str, str]:
    return {
        "liveq": liveq.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "gymnasium": gymnasium.__version__,
        "python": platform.python_version(),
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class RunDir:
    """Writes one run's folder; `log(record)` appends to metrics.jsonl and TensorBoard."""

    def __init__(self, out_dir: str | Path, config: RunConfig, *, resume_step: int | None = None):
        self.path = Path(out_dir)
        self.checkpoints = self.path / "checkpoints"
        self.metrics_path = self.path / "metrics.jsonl"
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self._start(config)
        else:
            self._resume(resume_step)
        from torch.utils.tensorboard import SummaryWriter  # slow import, only when running

        self.writer = SummaryWriter(log_dir=str(self.path / "tensorboard"),
                                    purge_step=resume_step)

    @property
    def latest(self) -> Path:
        return self.checkpoints / "latest.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    def _start(self, config: RunConfig) -> None:
        if self.metrics_path.exists() or self.latest.exists():
            raise ConfigError(f"{self.path} already holds a run; resume it or choose a new "
                              "output folder")
        save_yaml(run_config_dict(config), self.path / "config.yaml")
        meta = {"seed": config.seed, "versions": versions(), "started_at": _now(),
                "resumed_at": []}
        save_json(meta, self.path / "meta.json")
        self.metrics_path.touch()

    def _resume(self, step: int) -> None:
        meta_path = self.path / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"resumed_at": []}
        meta.setdefault("resumed_at", []).append({"time": _now(), "env_steps": step,
                                                  "versions": versions()})
        save_json(meta, meta_path)
        lines = self.metrics_path.read_text().splitlines() if self.metrics_path.exists() else []
        kept = [line for line in lines if line and json.loads(line)["env_steps"] <= step]
        self.metrics_path.write_text("".join(line + "\n" for line in kept))

    def log(self, record: dict[str, Any]) -> None:
        """Append one record (must hold `env_steps`) to metrics.jsonl and TensorBoard."""
        clean = {k: _plain(v) for k, v in record.items()}
        with self.metrics_path.open("a") as f:
            f.write(json_line(clean) + "\n")
        step = int(record["env_steps"])
        for key, value in clean.items():
            if key != "env_steps" and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


def _plain(value: Any) -> Any:
    """JSON-safe scalar: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(out_dir: str | Path) -> list[dict[str, Any]]:
    """All records of a run's metrics.jsonl, in order."""
    text = (Path(out_dir) / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line]
