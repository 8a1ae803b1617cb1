"""The decision log's array columns (features, scores, probabilities) as packed binary.

Every decision logs its full candidate table's features, scores and per-rank
probabilities. As JSON that was about 8 KB per decision and ~0.18 ms of CPU to encode
(about a fifth of the decision's write), and the bytes went through the WAL and its
checkpoints. `PackedArrays` stores the same values as raw little-endian numpy buffers
behind a short header: `b"LQP1"`, the header's length (4 bytes), the header (JSON: the
value's shape of dict or array, and each array's name, dtype and shape), then the arrays'
bytes. About a fifth of the size, and a microsecond to encode.

Reading gives back exactly what the JSON columns gave: nested Python lists of the same
numbers (a float32 feature read back is the float JSON held for it: both are the float32
value as a Python float), `None` where the value is NaN (JSON's `null`: non-finite scores
are logged as null), and dicts in their order. Rows written before migration 0005 hold
JSON text (or JSON bytes, on PostgreSQL after the migration's type change) and are
decoded as JSON, so the reward join, `liveq learn`, the gate and explain read old and new
logs alike.

What is bound may be numpy arrays (the service's own rows: no `tolist()`, no JSON) or the
JSON-shaped lists and dicts of any other writer (numbers as float64, `None` as NaN).
"""

from __future__ import annotations

import functools
import json
import struct
from typing import Any

import numpy as np
from sqlalchemy import LargeBinary
from sqlalchemy.types import TypeDecorator

MAGIC = b"LQP1"
_LENGTH = struct.Struct("<I")


def pack(value: Any) -> bytes:
    """`value` (an array, a nested list of numbers, or a dict of those) as packed bytes."""
    if isinstance(value, dict):
        kind, names, arrays = "dict", tuple(value), [_array(v) for v in value.values()]
    else:
        kind, names, arrays = "array", ("",), [_array(value)]
    layout = tuple((name, a.dtype.str, a.shape) for name, a in zip(names, arrays,
                                                                  strict=True))
    return b"".join([_head(kind, layout), *(a.tobytes() for a in arrays)])


@functools.lru_cache(maxsize=256)
def _head(kind: str, layout: tuple) -> bytes:
    """Magic, length and header of a layout (a service logs a handful of layouts)."""
    header = json.dumps({"kind": kind, "arrays": [[n, d, list(s)] for n, d, s in layout]},
                        separators=(",", ":")).encode()
    return MAGIC + _LENGTH.pack(len(header)) + header


def unpack(data: bytes) -> Any:
    """The JSON-shaped value `pack` packed (lists of Python numbers, NaN as None)."""
    (size,) = _LENGTH.unpack_from(data, len(MAGIC))
    start = len(MAGIC) + _LENGTH.size
    kind, layout = _layout(data[start:start + size])
    offset, values = start + size, {}
    for name, dtype, shape, count in layout:
        array = np.frombuffer(data, dtype, count, offset).reshape(shape)
        offset += count * dtype.itemsize
        values[name] = _as_json(array)
    return values if kind == "dict" else values[""]


@functools.lru_cache(maxsize=256)
def _layout(header: bytes) -> tuple[str, tuple]:
    parsed = json.loads(header)
    return parsed["kind"], tuple(
        (name, np.dtype(dtype), tuple(shape), int(np.prod(shape, dtype=np.int64)))
        for name, dtype, shape in parsed["arrays"])


def _array(value: Any) -> np.ndarray:
    """Numpy arrays as they are (little-endian); lists as float64 (None as NaN) or, when
    every entry is a bool or an int, as those."""
    if isinstance(value, np.ndarray):
        return value.astype(value.dtype.newbyteorder("<"), copy=False)
    array = np.asarray(value)
    if array.dtype.kind in "biu":
        return array.astype(array.dtype.newbyteorder("<"), copy=False)
    return np.asarray(value, dtype=object).astype(np.float64)  # None -> NaN


def _as_json(array: np.ndarray) -> Any:
    values = array.tolist()
    if array.dtype.kind == "f" and np.isnan(array).any():
        return _nan_as_none(values)
    return values


def _nan_as_none(values: Any) -> Any:
    if isinstance(values, list):
        return [_nan_as_none(v) for v in values]
    return None if values != values else values


class PackedArrays(TypeDecorator):
    """A column of arrays stored as `pack` bytes; JSON written by older rows is read too."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> bytes | None:
        return None if value is None else pack(value)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):  # a JSON row on SQLite (its column was JSON before)
            return json.loads(value)
        data = bytes(value)
        return unpack(data) if data[:len(MAGIC)] == MAGIC else json.loads(data)
