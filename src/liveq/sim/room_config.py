"""Settings of `liveq/LiveRoom-v0`, the live-room interaction-guidance simulator."""

from __future__ import annotations

from dataclasses import dataclass

from liveq.core.config import require
from liveq.sim.config import require_finite

PROMPTS = ("none", "gift", "comment", "follow", "highlight")
"""Action names, by index: nothing, suggest a gift, invite a comment, suggest following,
point to a highlight."""


@dataclass(kw_only=True)
class RoomConfig:
    """One viewer per slot, minute by minute, inside one streamer's room."""

    max_minutes: int = 60
    """Longest stay; a viewer still in the room then is truncated (not an early leave)."""
    gift_rate: float = 0.01
    """Gifts per viewer-minute of an average viewer at an average moment, unprompted
    (`fit_rates` sets it from a log)."""
    comment_rate: float = 0.08
    """Comments per viewer-minute of an average viewer at an average moment, unprompted."""
    follow_rate: float = 0.01
    """Chance per minute that a viewer of affinity 1 follows unprompted."""
    gift_value: float = 5.0
    """Mean value of one gift (values are exponential around it)."""
    prompt_lift: float = 8.0
    """How much a perfectly fitting prompt multiplies its action's rate, minus one."""
    highlight_mood: float = 0.3
    """Mood gained from a highlight shown while the streamer is fully active."""
    follow_retention: float = 0.5
    """Share of the base leaving hazard removed once the viewer follows."""
    annoyance_ignored: float = 0.2
    """Annoyance from an ignored prompt that did not fit at all (times one minus its fit),
    multiplied by one plus the earlier ignored prompts of that kind still remembered (so a
    second ignored prompt annoys more)."""
    annoyance_decay: float = 0.85
    """Share of annoyance and of remembered ignored prompts kept each minute."""
    leave_rate: float = 0.03
    """Leaving hazard per minute of a neutral viewer (mood 0.5, no annoyance)."""
    annoyance_leave: float = 0.08
    """Extra leaving hazard per unit of annoyance."""
    activity_period: float = 20.0
    """Minutes per cycle of the streamer's activity (peaks are good moments to prompt)."""
    weight_gift: float = 1.0
    """Reward per unit of gift value."""
    weight_comment: float = 0.5
    """Reward per comment."""
    weight_follow: float = 5.0
    """Reward per follow."""
    weight_minute: float = 0.1
    """Reward per minute the viewer stays."""
    weight_early_leave: float = 2.0
    """Penalty when the viewer leaves before `max_minutes`."""

    def validate(self) -> None:
        require_finite(self)
        require(self.max_minutes >= 1, f"max_minutes must be at least 1, got {self.max_minutes}")
        for name in ("gift_rate", "comment_rate", "follow_rate", "leave_rate"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        for name in ("gift_value", "prompt_lift", "highlight_mood", "annoyance_ignored",
                     "annoyance_leave", "weight_gift", "weight_comment", "weight_follow",
                     "weight_minute", "weight_early_leave"):
            value = getattr(self, name)
            require(value >= 0.0, f"{name} must be non-negative, got {value}")
        require(0.0 <= self.follow_retention <= 1.0,
                f"follow_retention must be in [0, 1], got {self.follow_retention}")
        require(0.0 <= self.annoyance_decay < 1.0,
                f"annoyance_decay must be in [0, 1), got {self.annoyance_decay}")
        require(self.activity_period > 0.0,
                f"activity_period must be positive, got {self.activity_period}")
