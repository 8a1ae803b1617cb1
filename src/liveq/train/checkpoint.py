"""Checkpoints that load with `torch.load(path, weights_only=True)`: no pickled objects.

A checkpoint is a nested dict of tensors, plain Python values and containers. Numpy
arrays are stored as `{"__ndarray__": tensor}` and come back as numpy arrays with the
same dtype, so components that keep numpy state (replay, env, codec) round-trip exactly.
Writes are atomic (temporary file, then rename), so an interrupted save never leaves a
half-written `latest.pt`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from liveq.core.errors import CheckpointError

FORMAT_VERSION = 1
NDARRAY_TAG = "__ndarray__"


def to_storable(value: Any) -> Any:
    """Replace numpy arrays and scalars in a nested structure by tensors and Python values.

    The tensors share the arrays' memory (a copy of a replay buffer and its codec's tables
    would cost a tenth of a second per checkpoint): store the result before the arrays
    change, as `save_checkpoint` does."""
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        return {NDARRAY_TAG: torch.from_numpy(array if array.flags.writeable else array.copy())}
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


def non_finite_entries(state: Any, prefix: str = "") -> list[str]:
    """Paths (`q_net.net.0.weight`) of the float tensors, arrays and numbers in a nested
    state that hold NaN or infinity."""
    if isinstance(state, dict):
        return [bad for key, value in state.items()
                for bad in non_finite_entries(value, f"{prefix}{key}.")]
    if isinstance(state, (list, tuple)):
        return [bad for i, value in enumerate(state)
                for bad in non_finite_entries(value, f"{prefix}{i}.")]
    name = prefix[:-1]
    if isinstance(state, torch.Tensor):
        finite = not state.is_floating_point() or bool(torch.isfinite(state).all())
    elif isinstance(state, np.ndarray):
        finite = not np.issubdtype(state.dtype, np.floating) or bool(np.isfinite(state).all())
    elif isinstance(state, float):
        finite = math.isfinite(state)
    else:
        finite = True
    return [] if finite else [name]


def require_parts(checkpoint: dict[str, Any], parts: tuple[str, ...], path: str | Path,
                  what: str) -> None:
    """Raise `CheckpointError` naming the first of `parts` that `checkpoint` lacks."""
    missing = [part for part in parts if part not in checkpoint]
    if missing:
        raise CheckpointError(f"{path}: the checkpoint has no '{missing[0]}' part ({what} "
                              f"needs {list(parts)}, found {sorted(checkpoint)})")


def config_differences(saved: Any, given: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two nested config dicts differ, each with both values."""
    if isinstance(saved, dict) and isinstance(given, dict):
        return [diff for key in dict.fromkeys([*saved, *given])
                for diff in config_differences(saved.get(key), given.get(key),
                                               f"{prefix}{key}.")]
    if saved == given:
        return []
    return [f"{prefix[:-1]} (saved {saved!r}, given {given!r})"]


def load_learner_checkpoint(path: str | Path, what: str) -> dict[str, Any]:
    """A checkpoint holding a learner (`config` and `agent`) with finite weights, or a
    `CheckpointError` naming the missing part or the non-finite tensors."""
    checkpoint = load_checkpoint(path)
    require_parts(checkpoint, ("config", "agent"), path, what)
    bad = non_finite_entries(checkpoint["agent"])
    if bad:
        raise CheckpointError(f"{path}: non-finite weights in {bad[:3]} (the run diverged)")
    return checkpoint
