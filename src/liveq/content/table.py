"""Content columns keyed by streamer id, for a service that sees streamers arrive.

The simulator keeps its streamers' content columns itself; a service gets a title and
tags when a streamer first goes live and needs the same columns for its candidate rows.
`ContentTable.add` embeds each phrase it has not seen (the simulator's vocabulary comes
from the shared cache), averages and projects exactly as the simulator does, so a model
trained in the simulator reads the same numbers in serving.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from liveq.features.content import Encoder, project, resolve_encoder
from liveq.sim.config import ContentConfig
from liveq.sim.content import PHRASES, content_model


class ContentTable:
    """`(dim,)` content columns per streamer id; unknown ids read as zeros (no text)."""

    def __init__(self, cfg: ContentConfig, encode: Encoder | None = None):
        self.model = content_model(cfg)
        self.encode = encode or resolve_encoder(cfg.encoder)
        self.dim = cfg.dim
        self.phrases = dict(zip(PHRASES, self.model.phrase_table, strict=True))
        self.rows: dict[int, np.ndarray] = {}

    def add(self, streamer_id: int, title: str, tags: Sequence[str]) -> np.ndarray:
        """Embed a streamer's title and tags (new phrases only) and keep its columns."""
        texts = [title, *tags]
        unseen = [t for t in dict.fromkeys(texts) if t not in self.phrases]
        if unseen:
            self.phrases.update(zip(unseen, self.encode(unseen), strict=True))
        mean = np.mean([self.phrases[t] for t in texts], axis=0)
        unit = mean / max(float(np.linalg.norm(mean)), 1e-8)
        self.rows[int(streamer_id)] = project(unit[None], self.model.basis)[0]
        return self.rows[int(streamer_id)]

    def columns(self, ids: np.ndarray) -> np.ndarray:
        """`(*ids.shape, dim)` float32 columns of streamer `ids` (-1 and unknown: zeros)."""
        flat = np.asarray(ids).reshape(-1)
        out = np.zeros((len(flat), self.dim), np.float32)
        for i, sid in enumerate(flat):
            row = self.rows.get(int(sid))
            if row is not None:
                out[i] = row
        return out.reshape(*np.shape(ids), self.dim)
