"""Configuration of the LiveStream simulator: sizes, behaviour parameters, reward weights.

Every number the simulator's behaviour depends on is a field here, with its reason in the
docstring, so calibration and readers see them all. `validate()` refuses values that make
no sense, NaN and infinity included (for configs built directly in Python; YAML and dicts
are also checked on loading).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from liveq.core.config import require
from liveq.core.errors import ConfigError

MAX_WARMUP_STEPS = 100_000
"""Most warm-up steps a config may ask for: a year of 10-minute steps is 52,560, and every
step simulates the catalogue's outside traffic, so a larger warm-up only stalls `reset`
(`warmup_hours: 1e9` would never finish)."""


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
class StreamerTraits:
    """How a new streamer's hidden traits, audience and schedule are drawn."""

    quality_sd: float = 0.7
    """Standard deviation of stream quality (logit units) across streamers."""
    clickbait_quality_drop: float = 0.5
    """Quality a clickbait streamer loses; its attractiveness is quality + clickbait_gap
    minus this, so the gap between look and delivery is clickbait_gap."""
    audience_spread: float = 0.8
    """Log-normal sigma of a streamer's outside audience: a few streamers draw most."""
    stream_hours_shape: float = 4.0
    """Gamma shape of stream lengths (mean mean_stream_hours); larger means more alike."""
    min_stream_minutes: int = 30
    """Shortest stream: a broadcast shorter than this is not worth starting."""
    max_stream_minutes: int = 720
    """Longest stream (12 hours)."""
    audience_ramp_minutes: float = 60.0
    """Minutes after the start at which a stream's outside audience is complete."""
    audience_ramp_start_minutes: float = 10.0
    """Head start of the ramp: a stream opens with this / audience_ramp_minutes of it."""
    popularity_attract: float = 0.5
    """Log outside audience per unit of attractiveness (people come for the look)."""
    popularity_quality: float = 0.5
    """Log outside audience per unit of quality (and stay for the stream)."""

    def validate(self) -> None:
        require_finite(self)
        require(self.quality_sd >= 0, f"quality_sd must be non-negative, got {self.quality_sd}")
        require(self.audience_spread >= 0,
                f"audience_spread must be non-negative, got {self.audience_spread}")
        require(self.stream_hours_shape > 0,
                f"stream_hours_shape must be positive, got {self.stream_hours_shape}")
        require(1 <= self.min_stream_minutes <= self.max_stream_minutes,
                "stream lengths must satisfy 1 <= min_stream_minutes <= max_stream_minutes, "
                f"got {self.min_stream_minutes} and {self.max_stream_minutes}")
        require(self.audience_ramp_minutes > 0,
                f"audience_ramp_minutes must be positive, got {self.audience_ramp_minutes}")
        require(self.audience_ramp_start_minutes >= 0,
                "audience_ramp_start_minutes must be non-negative, got "
                f"{self.audience_ramp_start_minutes}")


@dataclass(kw_only=True)
class ViewerTraits:
    """How a viewer's gift habit is drawn, and the logged past a returning viewer brings."""

    gift_log_mean: float = -0.5
    """Mean of log gift propensity (median propensity about 0.6)."""
    gift_log_sd: float = 1.0
    """Standard deviation of log gift propensity: a few viewers send most gifts."""
    veteran_profile_noise: float = 0.5
    """Noise of a returning viewer's logged profile around their true interests (a
    history is an imperfect record of taste), per unit of topic norm."""
    veteran_profile_norm: float = 0.8
    """Norm of a returning viewer's logged profile (below 1: partly learnt)."""
    veteran_days_p: float = 0.2
    """Success probability of the geometric days-active of a returning viewer (mean 5)."""
    veteran_sample: int = 20
    """Streamers a returning viewer's follows and history are picked from (best matches)."""
    veteran_picks: int = 3
    """Follows and history entries a returning viewer starts with."""
    veteran_minutes_min: float = 20.0
    """Fewest minutes a returning viewer has watched each streamer in their history."""
    veteran_minutes_max: float = 120.0
    """Most minutes a returning viewer has watched each streamer in their history."""

    def validate(self) -> None:
        require_finite(self)
        require(self.gift_log_sd >= 0, f"gift_log_sd must be non-negative, got {self.gift_log_sd}")
        for name in ("veteran_profile_noise", "veteran_profile_norm"):
            require(getattr(self, name) >= 0,
                    f"{name} must be non-negative, got {getattr(self, name)}")
        require(0 < self.veteran_days_p <= 1,
                f"veteran_days_p must be in (0, 1], got {self.veteran_days_p}")
        require(1 <= self.veteran_picks <= self.veteran_sample,
                "veteran_picks must be at least 1 and at most veteran_sample, got "
                f"{self.veteran_picks} and {self.veteran_sample}")
        require(0 <= self.veteran_minutes_min <= self.veteran_minutes_max,
                "history minutes must satisfy 0 <= veteran_minutes_min <= veteran_minutes_max")


@dataclass(kw_only=True)
class ContentConfig:
    """Titles and tags of streamers and the content features built from them (cold start)."""

    mode: Literal["off", "text", "topic"] = "off"
    """off: no text; text: streamers get titles and tags (`liveq.sim.content`) and each
    candidate row gains `dim` content columns (their sentence embedding, reduced); topic:
    the same texts, used only to fill in topics the platform has not learnt yet (with
    topic_evidence > 0), and no content columns."""
    dim: int = 32
    """Content columns per candidate: principal axes kept of the sentence embeddings (the
    first few carry mostly the category, which topic match already shows; 32 keep most of
    what the text says of quality and clickbait)."""
    noise: float = 0.2
    """Chance that each topic phrase of a streamer's text is a random category's."""
    cue: float = 0.6
    """Chance that the text hints at the hidden traits: a clickbait title, a quality tag."""
    cache_dir: str = ""
    """Folder of the cached phrase embeddings; empty means $LIVEQ_CACHE_DIR or
    ~/.cache/liveq."""
    encoder: str = "liveq.content.minilm:embed_texts"
    """`module:function` embedding a list of texts into rows, called only when the cache
    misses (an entry point, so the simulator itself never imports the model)."""

    def n_columns(self) -> int:
        """Content columns each candidate row gains: `dim` with text on, else 0."""
        return self.dim if self.mode == "text" else 0

    def has_text(self) -> bool:
        """Whether streamers get titles and tags (mode text or topic)."""
        return self.mode != "off"

    def validate(self) -> None:
        require_finite(self)
        require(self.mode in ("off", "text", "topic"),
                f"mode must be 'off', 'text' or 'topic', got {self.mode!r}")
        require(self.dim >= 1, f"dim must be at least 1, got {self.dim}")
        for name in ("noise", "cue"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        require(":" in self.encoder, f"encoder must be 'module:function', got "
                f"{self.encoder!r}")


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
    organic_match: float = 0.4
    """Topic match of outside viewers with the streams they open: they pick streams they
    like, so a mild positive match on average."""
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
    current_bonus: float = 0.5
    """Click bonus of the stream the viewer is watching now: staying put is easy."""
    click_fatigue_share: float = 0.5
    """Share of fatigue_weight a tired topic costs when choosing: fatigue is felt more
    while watching than when looking at a thumbnail."""
    watch_slope: float = 2.0
    """Watch share of a step is sigmoid(watch_slope * satisfaction)."""
    follow_satisfaction: float = 1.0
    """Satisfaction a watch must exceed before the viewer may follow the streamer."""
    profile_rate: float = 0.2
    """How far the logged profile moves toward a watched topic per unit of watch share."""
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
    """Effect of log1p(session minutes / return_minutes_unit) on the return logit."""
    return_minutes_unit: float = 10.0
    """Session minutes per unit inside that log1p (one step's worth by default)."""
    cold_start_prior: float = 20.0
    """Pseudo-impressions behind a new streamer's CTR and watch estimates."""
    topic_evidence: float = 0.0
    """0: the platform knows each streamer's topic from the start (a declared category).
    > 0: it learns it from engagement, like a co-watch embedding: the topic features are
    the true topic scaled by c / (c + topic_evidence), c the streamer's logged clicks, so a
    newcomer's topic is unknown until viewers click. With content on, the rest of each
    topic is read off the streamer's text (a ridge regression from the content columns to
    the topic, fitted on the streamers the platform knows), as a platform would do for a
    newcomer. The viewers' own behaviour always uses the true topic."""

    streamer_traits: StreamerTraits = field(default_factory=StreamerTraits)
    """How new streamers are drawn (see StreamerTraits)."""
    viewer_traits: ViewerTraits = field(default_factory=ViewerTraits)
    """How viewers are drawn and what returning viewers bring (see ViewerTraits)."""
    rewards: RewardWeights = field(default_factory=RewardWeights)
    """Reward weights (see RewardWeights)."""
    content: ContentConfig = field(default_factory=ContentConfig)
    """Streamer titles and tags, and content features (see ContentConfig)."""
    sim_threads: int = 4
    """Threads that build observations and candidate tables for large batches (capped at
    the machine's cores; results do not depend on it)."""

    def validate(self) -> None:
        require_finite(self)
        for name in ("streamer_traits", "viewer_traits", "content"):
            try:
                getattr(self, name).validate()
            except ConfigError as exc:
                raise ConfigError(f"{name}.{exc}") from None
        for name in ("n_streamers", "n_candidates", "slate_size", "topic_dim",
                     "max_session_steps", "max_follows", "history_slots", "sim_threads"):
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
                     "interest_drift", "follow_prob", "prime_time_share", "profile_rate"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        require(0 <= self.prime_time_hour < 24,
                f"prime_time_hour must be in [0, 24), got {self.prime_time_hour}")
        require(self.topic_evidence >= 0, f"topic_evidence must be >= 0, got "
                f"{self.topic_evidence}")
        for name in ("step_minutes", "mean_stream_hours", "patience_max", "cold_start_prior",
                     "prime_time_spread_hours", "return_minutes_unit", "organic_audience"):
            require(getattr(self, name) > 0, f"{name} must be positive, got "
                    f"{getattr(self, name)}")
        require(0 < self.position_decay <= 1,
                f"position_decay must be in (0, 1], got {self.position_decay}")
        require(0 <= self.patience_min <= self.patience_max <= self.patience_cap,
                "patience must satisfy 0 <= patience_min <= patience_max <= patience_cap")
        for name in ("followed_slots", "trending_slots", "step_cost", "no_click_cost",
                     "disappointment", "organic_impressions", "warmup_hours", "gift_rate",
                     "comment_rate", "watch_slope"):
            require(getattr(self, name) >= 0, f"{name} must be non-negative, got "
                    f"{getattr(self, name)}")
        warmup_steps = self.warmup_hours * 60 / self.step_minutes
        require(warmup_steps <= MAX_WARMUP_STEPS,
                f"warmup_hours {self.warmup_hours:g} at step_minutes {self.step_minutes:g} "
                f"is {warmup_steps:.3g} warm-up steps, more than {MAX_WARMUP_STEPS:,} (each "
                "step simulates the whole catalogue's outside traffic before the first "
                "session); lower warmup_hours or raise step_minutes")


def require_finite(config: Any, path: str = "") -> None:
    """Refuse NaN or infinite float fields of `config` and its nested configs, by name."""
    for f in dataclasses.fields(config):
        value, name = getattr(config, f.name), f"{path}{f.name}"
        if dataclasses.is_dataclass(value):
            require_finite(value, f"{name}.")
        elif isinstance(value, float):
            require(math.isfinite(value), f"{name} must be a finite number, got {value}")
