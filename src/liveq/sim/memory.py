"""Refuse simulator sizes that cannot fit in memory, before allocating anything.

A world of `n_streamers` slots and `n_sessions` concurrent sessions keeps per-streamer
state, feature tables and per-session state and observations. The estimate below counts
those arrays (a lower bound: temporaries come on top) and is compared with the memory the
machine has available, so `n_streamers: 1000000000` is a one-line error naming the fields
and the GiB instead of a MemoryError traceback minutes later.
"""

from __future__ import annotations

from liveq.core.errors import ConfigError
from liveq.core.memory import GIB, available_bytes
from liveq.features.schema import STREAMER_STATS, candidate_width, viewer_width
from liveq.sim.config import LiveStreamConfig


def streamer_bytes(cfg: LiveStreamConfig) -> int:
    """Bytes per streamer slot: hidden traits and logged state (82 + 4 topic_dim), plus
    the float32 topic and statistics rows of the feature tables."""
    content = 8 * cfg.content.n_columns()  # the slot's content row and its table copy
    return 82 + 4 * cfg.topic_dim + 4 * (cfg.topic_dim + len(STREAMER_STATS)) + content


def session_bytes(cfg: LiveStreamConfig) -> int:
    """Bytes per session: viewer state, candidate ids, the float32 observation, and the
    vector env's observation-space bounds (low and high, one row per session each)."""
    d, k = cfg.topic_dim, cfg.n_candidates
    state = 12 * d + 4 * cfg.max_follows + 8 * cfg.history_slots + 53
    observation = 4 * viewer_width(d) + 4 * k * candidate_width(cfg.content.n_columns()) + k
    gathered = 4 * k * (d + len(STREAMER_STATS) + 3)  # streamer rows and pair facts
    return state + 4 * k + 3 * observation + gathered


def check_memory(cfg: LiveStreamConfig, n_sessions: int, extra_bytes: int = 0,
                 extra_what: str = "") -> None:
    """Raise `ConfigError` with the estimate when the simulator's arrays cannot fit."""
    need = (cfg.n_streamers * streamer_bytes(cfg) + n_sessions * session_bytes(cfg)
            + extra_bytes)
    have = available_bytes()
    if have is not None and need > have:
        extra = f" and {extra_what}" if extra_what else ""
        raise ConfigError(
            f"n_streamers={cfg.n_streamers:,} with {n_sessions:,} sessions (n_envs), "
            f"topic_dim={cfg.topic_dim} and n_candidates={cfg.n_candidates}{extra} need "
            f"about {need / GIB:,.1f} GiB for the simulator's arrays, but only "
            f"{have / GIB:,.1f} GiB of memory is available; lower n_streamers or n_envs")
