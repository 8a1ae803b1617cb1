"""Interaction logs: loaders (Twitch, KuaiLive, generic), synthetic logs, calibration."""

from __future__ import annotations

from typing import Any

from liveq.data.load import FORMATS, load_log
from liveq.data.log import InteractionLog, LogError, from_raw

__all__ = ["FORMATS", "InteractionLog", "LogError", "from_raw", "load_log",
           "simulate_interactions"]


def __getattr__(name: str) -> Any:
    # The simulator is imported only when synthetic logs are asked for.
    if name == "simulate_interactions":
        from liveq.data.synth import simulate_interactions
        return simulate_interactions
    raise AttributeError(f"module 'liveq.data' has no attribute {name!r}")
