"""Checkpoints that load with `torch.load(path, weights_only=True)`: no pickled objects.

A checkpoint is a nested dict of tensors, plain Python values and containers. Numpy
arrays are stored as `{"__ndarray__": tensor}` and come back as numpy arrays with the
same dtype, so components that keep numpy state (replay, env, codec) round-trip exactly.
Writes are atomic (temporary file, then rename), so an interrupted save never leaves a
half-written `latest.pt`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from liveq.core.errors import CheckpointError

FORMAT_VERSION = 1
NDARRAY_TAG = "__ndarray__"


def to_storable(value: Any) -> Any:
    """Replace numpy arrays and scalars in a nested structure by tensors and Python values."""
    if isinstance(value, np.ndarray):
        return {NDARRAY_TAG: torch.from_numpy(np.ascontiguousarray(value).copy())}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: to_storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_storable(v) for v in value)
    return value


def from_storable(value: Any) -> Any:
    """Inverse of `to_storable`: tagged tensors become numpy arrays again."""
    if isinstance(value, dict):
        if set(value) == {NDARRAY_TAG}:
            return value[NDARRAY_TAG].numpy()
        return {k: from_storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(from_storable(v) for v in value)
    return value


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (numpy allowed anywhere inside) atomically to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT_VERSION, **to_storable(state)}, tmp)
    os.replace(tmp, path)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, or raise a one-line `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise CheckpointError(f"cannot read checkpoint {path} ({_one_line(exc)})") from None
    if not isinstance(data, dict) or "format" not in data:
        raise CheckpointError(f"{path} is not a liveq checkpoint (no format version)")
    if data["format"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {data['format']}, this liveq reads {FORMAT_VERSION}"
        )
    return from_storable({k: v for k, v in data.items() if k != "format"})
