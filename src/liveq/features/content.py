"""Content features: a streamer's title and tags as a few numbers, for cold start.

A newcomer has no logged impressions, so its statistics say nothing yet; its title and
tags do. The content vector of a streamer is the mean of the unit sentence embeddings of
its title and each tag, scaled to unit length, then projected on the first `dim`
principal axes of a reference set of such vectors (`ContentBasis`). Phrases are embedded
once and kept in a cache file keyed by a hash of the texts and the encoder, so a world,
a test or a service rebuilds nothing it has seen before and loads no model then.

This module is numpy only: the encoder is named by an entry point (`module:function`,
such as `liveq.content.minilm:embed_texts`) and imported only when the cache misses.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from liveq.core.errors import ConfigError

Encoder = Callable[[list[str]], np.ndarray]
"""Texts -> `(len(texts), E)` float32 unit-length sentence embeddings."""


class ContentBasis(NamedTuple):
    """Principal axes the content vectors are projected on."""

    mean: np.ndarray  # (E,) float32 mean of the reference vectors
    axes: np.ndarray  # (dim, E) float32 orthonormal principal axes, largest variance first


def cache_dir(configured: str = "") -> Path:
    """The cache folder: `configured`, else $LIVEQ_CACHE_DIR, else ~/.cache/liveq."""
    folder = configured or os.environ.get("LIVEQ_CACHE_DIR", "")
    return Path(folder).expanduser() if folder else Path.home() / ".cache" / "liveq"


def table_key(texts: Sequence[str], encoder: str) -> str:
    """Hash of the encoder's name and every text in order: the cache file's name."""
    digest = hashlib.sha256(encoder.encode())
    for text in texts:
        digest.update(b"\0" + text.encode())
    return digest.hexdigest()[:24]


def resolve_encoder(entry_point: str) -> Encoder:
    """The function an entry point `module:function` names, imported now."""
    module, _, name = entry_point.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"content.encoder {entry_point!r} cannot be loaded ({exc}); "
                          "install the extra: pip install 'liveq[content]'") from None


def cached_embeddings(texts: Sequence[str], *, encoder: str, folder: Path) -> np.ndarray:
    """`(len(texts), E)` float32 embeddings of `texts`, from the cache or built and saved.

    The file is `<folder>/content-<table_key>.npy`; a missing or unreadable file is
    rebuilt with the encoder, and changed texts or a changed encoder give a new key.
    """
    path = folder / f"content-{table_key(texts, encoder)}.npy"
    if path.exists():
        try:
            table = np.load(path)
            if table.ndim == 2 and len(table) == len(texts):
                return table.astype(np.float32)
        except (OSError, ValueError):
            pass  # a truncated or foreign file: rebuild it below
    table = np.asarray(resolve_encoder(encoder)(list(texts)), dtype=np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(partial, table)
    partial.replace(path)  # atomic: concurrent builders never read half a file
    return table


def mean_vectors(phrase_ids: np.ndarray, phrase_table: np.ndarray) -> np.ndarray:
    """`(m, E)` unit-length mean of the embeddings of each row's phrases `(m, S)`."""
    mean = phrase_table[phrase_ids].mean(axis=1)
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-8)


def fit_basis(vectors: np.ndarray, dim: int) -> ContentBasis:
    """The `dim` principal axes of `vectors (m, E)`; each axis's sign is fixed so that its
    largest entry is positive, which makes the basis the same on every machine."""
    if not 1 <= dim <= min(vectors.shape):
        raise ConfigError(f"content.dim must be in [1, {min(vectors.shape)}], got {dim}")
    mean = vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(vectors - mean, full_matrices=False)
    axes = vt[:dim]
    signs = np.sign(axes[np.arange(dim), np.abs(axes).argmax(axis=1)])
    return ContentBasis(mean.astype(np.float32), (axes * signs[:, None]).astype(np.float32))


def project(vectors: np.ndarray, basis: ContentBasis) -> np.ndarray:
    """`(m, dim)` float32 content columns of unit content vectors `(m, E)`."""
    return ((vectors - basis.mean) @ basis.axes.T).astype(np.float32)
