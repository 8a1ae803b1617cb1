"""A family of LiveStream worlds for checking that a learner's lead is not tuned to one.

Each world is the demo run config (`livestream_default`) with an overlay on its
simulator kwargs: other reward weights, a larger catalogue and candidate table, less
patience, stronger prime time, more or less clickbait and fatigue. The worlds differ in
where long-term value lies: in `clicks_only` (no clickbait, no fatigue, clicks the only
reward) a click is worth little beyond itself, apart from the patience it saves, so a
long-horizon learner can at best tie its myopic twin; in `default` clickbait, fatigue and
return visits reward what a one-step model cannot see.

    from liveq.experiments.world_family import WORLDS, world_config
    data = world_config("clicks_only")   # a run-config dict, ready for load_run_config
"""

from __future__ import annotations

import json
from typing import Any

from liveq.core.config import ConfigError, load_yaml

BASE_CONFIG = "livestream_default"
"""The run config every world starts from (its agent, training budget and env)."""

_NO_REWARD = {"watch_minute": 0.0, "click": 0.0, "gift": 0.0, "comment": 0.0,
              "return_visit": 0.0}

WORLDS: dict[str, dict[str, Any]] = {
    "default": {},
    "clicks_only": {"rewards": {**_NO_REWARD, "click": 1.0}, "clickbait_share": 0.0,
                    "fatigue_weight": 0.0},
    "watch_only": {"rewards": {**_NO_REWARD, "watch_minute": 0.05}},
    "large": {"n_streamers": 2000, "n_candidates": 32},
    "low_patience": {"patience_min": 1.0, "patience_max": 2.0},
    "prime_time": {"prime_time_share": 0.95, "prime_time_spread_hours": 1.0},
    "clickbait_high": {"clickbait_share": 0.6, "clickbait_gap": 3.0},
    "clickbait_low": {"clickbait_share": 0.05},
    "fatigue_high": {"fatigue_weight": 2.0, "fatigue_decay": 0.8},
    "fatigue_low": {"fatigue_weight": 0.2},
}
"""World name -> overlay on the base config's `env.kwargs` (LiveStreamConfig fields)."""


def world_config(name: str, base: str = BASE_CONFIG) -> dict[str, Any]:
    """The run-config dict of world `name`: `base` with the world's env overlay."""
    if name not in WORLDS:
        raise ConfigError(f"unknown world {name!r}; choose from {sorted(WORLDS)}")
    data = json.loads(json.dumps(load_yaml(base)))
    kwargs = data.setdefault("env", {}).setdefault("kwargs", {})
    for key, value in WORLDS[name].items():
        if isinstance(value, dict):
            kwargs[key] = {**kwargs.get(key, {}), **value}
        else:
            kwargs[key] = value
    return data
