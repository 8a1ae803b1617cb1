"""Replay codec for LiveStream observations: store ids and the clock, not feature copies.

A transition keeps the viewer vector, the candidate streamer ids, the per-pair facts
(followed, watching now, minutes watched before) and the clock tick. The streamer tables
(topics and logged statistics) are kept once per tick in a ring long enough to cover the
replay buffer, and `decode` rebuilds the candidate features with the same function the
env uses, so the network sees exactly what the agent saw.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liveq.features.schema import PAIR_FEATURES, STREAMER_STATS, viewer_width
from liveq.features.streamer import candidate_features
from liveq.sim.core import LiveStreamCore
from liveq.sim.memory import check_memory


class LiveStreamCodec:
    """Implements liveq.buffers.replay's ObsCodec protocol for a `LiveStreamCore`."""

    def __init__(self, core: LiveStreamCore, capacity: int):
        cfg, k = core.cfg, core.cfg.n_candidates
        self.core = core
        self.n_pair = len(PAIR_FEATURES)
        viewer_dim = viewer_width(cfg.topic_dim)
        self.fields = {
            "viewer": ((viewer_dim,), np.dtype(np.float32)),
            "ids": ((k,), np.dtype(np.int32)),
            "pair": ((k, self.n_pair), np.dtype(np.float32)),
            "tick": ((), np.dtype(np.int64)),
        }
        # Ticks a transition can outlive in the buffer, plus its next observation.
        self.ring_size = -(-capacity // core.n) + 2
        rows = cfg.n_streamers + 1
        n_stats = len(STREAMER_STATS) + cfg.content.n_columns()  # content rides with stats
        ring_bytes = self.ring_size * rows * (cfg.topic_dim + n_stats) * 4
        check_memory(cfg, core.n, ring_bytes, f"a replay ring of {self.ring_size:,} streamer "
                     f"tables (replay capacity {capacity:,})")
        self.ring_topics = np.zeros((self.ring_size, rows, cfg.topic_dim), np.float32)
        self.ring_stats = np.zeros((self.ring_size, rows, n_stats), np.float32)
        self.ring_tick = np.full(self.ring_size, -1, dtype=np.int64)

    def encode(self, obs: dict[str, np.ndarray], infos: dict | None = None) -> dict:
        """Compact fields of the observation the core has just returned."""
        core = self.core
        slot = core.tick % self.ring_size
        if self.ring_tick[slot] != core.tick:
            self.ring_topics[slot] = core.topics
            self.ring_stats[slot] = core.stats
            self.ring_tick[slot] = core.tick
        return {
            "viewer": obs["viewer"],
            "ids": core.cand_ids.astype(np.int32),
            "pair": obs["candidates"][:, :, 2: 2 + self.n_pair],
            "tick": np.full(core.n, core.tick, dtype=np.int64),
        }

    def decode(self, stored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ticks, ids = stored["tick"], stored["ids"]
        slots = ticks % self.ring_size
        if np.any(self.ring_tick[slots] != ticks):
            raise RuntimeError("replay holds a tick older than the codec's streamer-table "
                               "ring; the ring must cover the replay capacity")
        n_rows = self.ring_topics.shape[1]
        flat = slots[:, None] * n_rows + np.where(ids >= 0, ids, n_rows - 1)  # (batch, K)
        topics = np.take(self.ring_topics.reshape(-1, self.ring_topics.shape[2]), flat, axis=0)
        stats = np.take(self.ring_stats.reshape(-1, self.ring_stats.shape[2]), flat, axis=0)
        cands = candidate_features(topics, stats, stored["viewer"], stored["pair"])
        return {"viewer": stored["viewer"], "candidates": cands,
                "mask": (ids >= 0).astype(np.int8)}

    def nbytes(self) -> int:
        return self.ring_topics.nbytes + self.ring_stats.nbytes + self.ring_tick.nbytes

    def state_dict(self) -> dict[str, Any]:
        return {"ring_topics": self.ring_topics.copy(), "ring_stats": self.ring_stats.copy(),
                "ring_tick": self.ring_tick.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("ring_topics", "ring_stats", "ring_tick"):
            value = np.asarray(state[key])
            if value.shape != getattr(self, key).shape:
                raise ValueError(f"codec state '{key}' has shape {value.shape}, expected "
                                 f"{getattr(self, key).shape} (different config or capacity?)")
            setattr(self, key, value.astype(getattr(self, key).dtype))
