"""The feature schema: every column of the agent's observation, its meaning and its scale.

The observation has two parts. The viewer vector is two topic blocks (the interest
profile, then recent topic exposure, `topic_dim` columns each) followed by
`VIEWER_SCHEMA`. Each candidate row is `CANDIDATE_SCHEMA`: two topic products with the
viewer's blocks, the viewer-streamer pair facts (`PAIR_SCHEMA`), then the streamer's
logged statistics (`STREAMER_SCHEMA`). The `*_SCHEMA` tuples hold `Feature` records; the
matching `*_FEATURES` / `STREAMER_STATS` tuples hold just the names, in the same order.

Every column is something a platform logs for itself, so a model trained in the simulator
can be served on real traffic: the builders in `liveq.features.viewer` and
`liveq.features.streamer` compute them from plain arrays.

Scales keep every column near [0, 1] for the usual values; the divisors below are part of
the feature definition, shared by the simulator and any service.
"""

from __future__ import annotations

from typing import NamedTuple

from liveq.core.units import MINUTES_PER_DAY


class Feature(NamedTuple):
    """One observation column: its name, what it measures and how it is scaled."""

    name: str
    meaning: str
    scale: str


SESSION_MINUTES_LOG_SCALE = 5.0
"""`log1p(session minutes) / 5`: a two-and-a-half-hour session reads about 1."""
DAYS_LOG_SCALE = 3.0
"""`log1p(days active) / 3`: three weeks of visits read about 1."""
HISTORY_MINUTES_LOG_SCALE = 5.0
"""`log1p(minutes watched before) / 5`: about two and a half hours of history read 1."""
VIEWERS_LOG_SCALE = 8.0
"""`log1p(audience) / 8`: an audience of about 3,000 reads 1."""
IMPRESSIONS_LOG_SCALE = 10.0
"""`log1p(impressions) / 10`: about 22,000 logged impressions read 1 (full confidence)."""
MINUTES_LIVE_SCALE = 300.0
"""Minutes live / 300: a five-hour stream reads 1."""
NEW_STREAMER_MINUTES = MINUTES_PER_DAY
"""A streamer first seen less than a day ago counts as new (cold start)."""
PRIOR_CTR = 0.3
"""Click-through rate a streamer with no impressions is assumed to have."""
PRIOR_WATCH = 0.5
"""Watch share a streamer with no clicks is assumed to have."""

TOPIC_BLOCKS = (
    Feature("profile", "interest profile: watch-share-weighted running mean of watched "
            "streamers' topics (zero for a new viewer)", "topic units, norm <= 1"),
    Feature("recent", "recent topic exposure: watch-share-weighted topics, decayed each "
            "step", "topic units, norm <= 1 / (1 - exposure decay)"),
)
VIEWER_SCHEMA = (
    Feature("tod_sin", "time of day", "sin(2 pi minute of day / 1440)"),
    Feature("tod_cos", "time of day", "cos(2 pi minute of day / 1440)"),
    Feature("session_step", "recommendations served this session",
            "steps / max_session_steps"),
    Feature("session_minutes", "minutes watched this session",
            f"log1p(minutes) / {SESSION_MINUTES_LOG_SCALE:g}"),
    Feature("last_click", "opened the previous recommendation", "0 or 1"),
    Feature("last_watch", "share of the previous step spent watching", "[0, 1]"),
    Feature("follows", "streamers followed", "min(count, max_follows) / max_follows"),
    Feature("is_new", "first visit (no days active before)", "0 or 1"),
    Feature("days", "days the viewer has come back", f"log1p(days) / {DAYS_LOG_SCALE:g}"),
    Feature("current_live", "watching a stream that is still live", "0 or 1"),
)
PAIR_SCHEMA = (
    Feature("followed", "the viewer follows the streamer", "0 or 1"),
    Feature("current", "the viewer is watching the streamer now", "0 or 1"),
    Feature("history_minutes", "minutes the viewer watched the streamer before",
            f"log1p(minutes) / {HISTORY_MINUTES_LOG_SCALE:g}"),
)
STREAMER_SCHEMA = (
    Feature("log_viewers", "audience now", f"log1p(viewers) / {VIEWERS_LOG_SCALE:g}"),
    Feature("est_ctr", "click-through rate from logged impressions and clicks",
            f"(clicks + prior * {PRIOR_CTR:g}) / (impressions + prior)"),
    Feature("est_watch", "mean watch share per click",
            f"(watch share sum + prior * {PRIOR_WATCH:g}) / (clicks + prior)"),
    Feature("confidence", "impressions logged", f"log1p(impressions) / "
            f"{IMPRESSIONS_LOG_SCALE:g}"),
    Feature("hours_live", "minutes since the stream started", f"minutes / "
            f"{MINUTES_LIVE_SCALE:g}"),
    Feature("is_new", "first seen less than a day ago", "0 or 1"),
)
CANDIDATE_SCHEMA = (
    Feature("match", "streamer topic . viewer profile", "[-1, 1]"),
    Feature("recent_overlap", "streamer topic . recent exposure", "topic units"),
    *PAIR_SCHEMA,
    *STREAMER_SCHEMA,
)
CONTENT_BLOCK = Feature(
    "content", "title and tags: their mean sentence embedding projected on `dim` fixed "
    "principal axes (`liveq.features.content`); only with content on, after the stats",
    "projection of a centred unit vector, each column in [-2, 2]")
VIEWER_FEATURES = tuple(f.name for f in VIEWER_SCHEMA)
PAIR_FEATURES = tuple(f.name for f in PAIR_SCHEMA)
STREAMER_STATS = tuple(f.name for f in STREAMER_SCHEMA)
CANDIDATE_FEATURES = tuple(f.name for f in CANDIDATE_SCHEMA)


def candidate_width(content_dim: int = 0) -> int:
    """Columns of a candidate row: `CANDIDATE_FEATURES`, then `content_dim` content ones."""
    return len(CANDIDATE_SCHEMA) + content_dim


def candidate_column_names(content_dim: int = 0) -> tuple[str, ...]:
    """Every candidate column's name, `CANDIDATE_FEATURES` then `content[0]` ..."""
    return CANDIDATE_FEATURES + tuple(f"{CONTENT_BLOCK.name}[{i}]" for i in range(content_dim))


def viewer_width(topic_dim: int) -> int:
    """Columns of the viewer vector: two topic blocks, then `VIEWER_FEATURES`."""
    return len(TOPIC_BLOCKS) * topic_dim + len(VIEWER_SCHEMA)


def viewer_column_names(topic_dim: int) -> tuple[str, ...]:
    """Every viewer column's name, `profile[0]` ... `recent[d-1]`, then the scalars."""
    blocks = tuple(f"{b.name}[{i}]" for b in TOPIC_BLOCKS for i in range(topic_dim))
    return blocks + VIEWER_FEATURES
