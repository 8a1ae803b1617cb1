"""The config of `liveq/AdPlacement-v0`: campaigns, viewers, click/conversion and fatigue.

Money is in currency units (the platform's revenue is advertisers' spend); time is in
minutes of a simulated ad day. Every field is validated and a bad value raises a
`ConfigError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from liveq.core.config import require
from liveq.sim.config import require_finite


@dataclass(kw_only=True)
class AdPlacementConfig:
    """One ad day in live streams: campaigns with daily budgets bidding per click."""

    n_campaigns: int = 5
    """Campaigns competing for ad opportunities (the action space is this plus one, "none")."""
    feature_dim: int = 4
    """Width of the viewer, stream and campaign topic vectors."""
    day_minutes: float = 600.0
    """Length of the ad day; budgets are daily, the episode ends when the day is over."""
    minutes_per_opportunity: float = 5.0
    """Minutes of watching between two ad opportunities for the viewer in the slot."""
    mean_session_minutes: float = 40.0
    """Mean planned stay of a viewer (exponential); a viewer who leaves early loses the rest."""
    budget_mean: float = 6.0
    """Mean daily budget of a campaign (spread x0.5..x1.5)."""
    bid_mean: float = 1.0
    """Mean cost per click (CPC) bid; the platform earns the bid on each click, capped by
    the campaign's remaining budget, so a budget is never overspent."""
    ctr_base: float = -2.0
    """Logit of the click-through rate of an average ad to an average viewer."""
    ctr_relevance: float = 1.5
    """Logit gain per unit of observable viewer-campaign relevance (topic dot product)."""
    ctr_hidden_scale: float = 0.5
    """Spread of each campaign's hidden creative quality on the CTR logit."""
    prime_time_gain: float = 1.0
    """CTR logit gain at the evening peak (the last third of the day) over the morning;
    it is why spending a budget evenly across the day can pay."""
    cvr_base: float = -1.5
    """Logit of the conversion rate after a click."""
    conversion_value_mean: float = 3.0
    """Mean advertiser value of one conversion (for ROI)."""
    targeting_share: float = 0.7
    """Chance a campaign targets each of the viewer segments (at least one is targeted)."""
    n_segments: int = 3
    """Viewer segments campaigns can target."""
    leave_base: float = 0.02
    """Chance per opportunity a viewer leaves early with no ads seen."""
    leave_per_ad: float = 0.06
    """Added leave chance per recent ad (fatigue, decayed by `fatigue_decay` each step)."""
    fatigue_decay: float = 0.8
    """Share of the recent-ad count kept from one opportunity to the next."""
    minute_value: float = 0.02
    """Reward cost of one lost watch minute (currency per minute): the platform's value of
    watching that is not ad revenue (retention, gifts, future ads elsewhere)."""
    invalid_action: str = "none"
    """What a masked action does: "none" shows no ad (documented handling), "raise" raises
    `InvalidActionError`."""

    def validate(self) -> None:
        require_finite(self)
        for name in ("n_campaigns", "feature_dim", "n_segments"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got "
                                              f"{getattr(self, name)}")
        for name in ("day_minutes", "minutes_per_opportunity", "mean_session_minutes",
                     "budget_mean", "bid_mean", "conversion_value_mean"):
            require(getattr(self, name) > 0, f"{name} must be positive, got "
                                             f"{getattr(self, name)}")
        require(self.minutes_per_opportunity <= self.day_minutes,
                "minutes_per_opportunity must not exceed day_minutes")
        for name in ("targeting_share", "leave_base", "leave_per_ad", "fatigue_decay"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        for name in ("ctr_hidden_scale", "prime_time_gain", "minute_value"):
            require(getattr(self, name) >= 0, f"{name} must be non-negative, got "
                                              f"{getattr(self, name)}")
        require(self.invalid_action in ("none", "raise"),
                f"invalid_action must be 'none' or 'raise', got {self.invalid_action!r}")
