"""Configuration of the LiveStream simulator: sizes, behaviour parameters, reward weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from liveq.core.config import require


@dataclass(kw_only=True)
class RewardWeights:
    """Reward = weighted sum of what the viewer did this step."""

    watch_minute: float = 0.05
    """Reward per minute watched."""
    click: float = 1.0
    """Reward per opened recommendation."""
    gift: float = 0.5
    """Reward per gift sent."""
    comment: float = 0.0
    """Reward per comment written."""
    return_visit: float = 2.0
    """Reward when a session ends and the viewer will come back the next day."""


@dataclass(kw_only=True)
class LiveStreamConfig:
    """Everything the LiveStream simulator needs; the defaults are the demo world."""

    n_streamers: int = 600
    """Streamer slots in the catalogue (offline streamers are replaced by newcomers)."""
    n_candidates: int = 16
    """Size K of the candidate table shown to the agent each step."""
    slate_size: int = 1
    """Number of ranked recommendations per step (1 = a single stream)."""
    topic_dim: int = 6
    """Dimension of the topic space shared by viewers and streamers."""
    step_minutes: float = 10.0
    """Minutes of platform time per step (10 matches the Twitch log's time slots)."""
    max_session_steps: int = 80
    """Steps after which a session is truncated."""
    invalid_action: Literal["error", "empty"] = "error"
    """A masked or out-of-range action raises (error) or counts as no recommendation (empty)."""

    live_day_prob: float = 0.8
    """Chance that a streamer streams on a given day."""
    mean_stream_hours: float = 3.0
    """Mean length of a live stream in hours."""
    prime_time_hour: float = 19.0
    """Hour of the day around which most streams start (prime time)."""
    prime_time_share: float = 0.6
    """Share of streamers who start around prime time; the rest start at any hour."""
    prime_time_spread_hours: float = 2.0
    """Standard deviation of prime-time start hours."""
    clickbait_share: float = 0.3
    """Share of streamers whose thumbnail promises more than the stream delivers."""
    clickbait_gap: float = 2.0
    """Attractiveness minus quality for clickbait streamers (logit units)."""
    new_streamer_rate: float = 0.002
    """Per-step chance that an offline streamer slot is taken by a newcomer."""
    organic_audience: float = 200.0
    """Scale of the viewers a stream draws from outside the simulated sessions."""
    organic_impressions: float = 3.0
    """Impressions per step the platform logs from outside viewers, per audience unit."""
    warmup_hours: float = 24.0
    """Hours of outside traffic logged before the first session (a platform already live)."""
    returning_share: float = 0.5
    """Share of the first sessions' viewers who already have a profile, follows and history."""

    followed_slots: int = 4
    """Candidate-table slots reserved for followed streamers who are live."""
    trending_slots: int = 4
    """Candidate-table slots filled with the most-watched live streams."""
    max_follows: int = 8
    """Length of a viewer's follow list (oldest follow dropped when full)."""
    history_slots: int = 8
    """Streamers per viewer whose watched minutes are remembered."""

    patience_min: float = 2.0
    """Lowest initial patience of a session."""
    patience_max: float = 4.0
    """Highest initial patience of a session."""
    patience_cap: float = 6.0
    """Patience never exceeds this: even a delighted viewer leaves eventually."""
    step_cost: float = 0.2
    """Patience spent on every step."""
    no_click_cost: float = 0.4
    """Extra patience spent when nothing is opened."""
    satisfaction_refill: float = 0.5
    """Patience regained per unit of satisfaction above the threshold."""
    satisfaction_threshold: float = 0.8
    """Satisfaction below which watching drains patience."""
    fatigue_weight: float = 1.0
    """Satisfaction lost per unit of overlap with recently watched topics."""
    fatigue_decay: float = 0.6
    """Share of recent-topic exposure kept from one step to the next."""
    disappointment: float = 0.3
    """Satisfaction lost per unit by which a stream's attractiveness exceeds its quality."""
    match_weight: float = 1.5
    """Weight of the viewer-topic match in satisfaction and click utility."""
    follow_bonus: float = 0.6
    """Satisfaction and click bonus of a followed streamer."""
    no_click_utility: float = 1.0
    """Utility of opening nothing in the choice model."""
    position_decay: float = 0.7
    """Click attraction multiplier per rank position below the first."""
    interest_drift: float = 0.05
    """How far a viewer's interests move toward a watched topic per step."""
    follow_prob: float = 0.3
    """Chance to follow a streamer after a very satisfying watch."""
    gift_rate: float = 0.15
    """Mean gifts per fully satisfied watched step for an average gifter."""
    comment_rate: float = 0.5
    """Mean comments per fully satisfied watched step."""
    return_bias: float = -1.5
    """Logit of coming back tomorrow before the session's effect."""
    return_satisfaction: float = 1.5
    """Effect of mean session satisfaction on the return logit."""
    return_minutes: float = 0.4
    """Effect of log1p(session watch hours * 6) on the return logit."""
    cold_start_prior: float = 20.0
    """Pseudo-impressions behind a new streamer's CTR and watch estimates."""

    rewards: RewardWeights = field(default_factory=RewardWeights)
    """Reward weights (see RewardWeights)."""

    def validate(self) -> None:
        for name in ("n_streamers", "n_candidates", "slate_size", "topic_dim",
                     "max_session_steps", "max_follows", "history_slots"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got "
                    f"{getattr(self, name)}")
        require(self.slate_size <= self.n_candidates,
                f"slate_size ({self.slate_size}) cannot exceed n_candidates "
                f"({self.n_candidates})")
        require(self.n_candidates <= self.n_streamers,
                f"n_candidates ({self.n_candidates}) cannot exceed n_streamers "
                f"({self.n_streamers})")
        require(self.followed_slots + self.trending_slots <= self.n_candidates,
                "followed_slots + trending_slots cannot exceed n_candidates")
        require(0 <= self.fatigue_decay < 1,
                f"fatigue_decay must be in [0, 1), got {self.fatigue_decay}")
        for name in ("live_day_prob", "clickbait_share", "new_streamer_rate", "returning_share",
                     "interest_drift", "follow_prob", "prime_time_share"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        require(0 <= self.prime_time_hour < 24,
                f"prime_time_hour must be in [0, 24), got {self.prime_time_hour}")
        for name in ("step_minutes", "mean_stream_hours", "patience_max", "cold_start_prior",
                     "prime_time_spread_hours"):
            require(getattr(self, name) > 0, f"{name} must be positive, got "
                    f"{getattr(self, name)}")
        require(0 < self.position_decay <= 1,
                f"position_decay must be in (0, 1], got {self.position_decay}")
        require(0 <= self.patience_min <= self.patience_max <= self.patience_cap,
                "patience must satisfy 0 <= patience_min <= patience_max <= patience_cap")
        for name in ("followed_slots", "trending_slots", "step_cost", "no_click_cost",
                     "disappointment",
                     "organic_impressions", "warmup_hours",
                     "organic_audience", "gift_rate", "comment_rate"):
            require(getattr(self, name) >= 0, f"{name} must be non-negative, got "
                    f"{getattr(self, name)}")
