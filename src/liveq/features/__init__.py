"""Features a platform can compute from its own logs: the schema and the builders.

The simulator builds its observations with these functions, and a service serving a model
trained in the simulator calls them on its logged events. See `schema` for every column's
meaning and scale, `viewer` for the viewer vector and `streamer` for the candidate table.
"""

from liveq.features.schema import (
    CANDIDATE_FEATURES,
    CANDIDATE_SCHEMA,
    CONTENT_BLOCK,
    PAIR_FEATURES,
    PAIR_SCHEMA,
    STREAMER_SCHEMA,
    STREAMER_STATS,
    TOPIC_BLOCKS,
    VIEWER_FEATURES,
    VIEWER_SCHEMA,
    Feature,
    candidate_column_names,
    candidate_width,
    viewer_column_names,
    viewer_width,
)
from liveq.features.streamer import (
    Engagement,
    StreamerRecord,
    add_engagement,
    candidate_features,
    count_engagement,
    pair_features,
    streamer_stats,
    streamer_tables,
)
from liveq.features.viewer import (
    ViewerRecord,
    add_follow,
    add_history,
    is_followed,
    minutes_watched,
    record_watches,
    viewer_features,
)

__all__ = [
    "CANDIDATE_FEATURES", "CANDIDATE_SCHEMA", "CONTENT_BLOCK", "PAIR_FEATURES", "PAIR_SCHEMA",
    "STREAMER_SCHEMA", "STREAMER_STATS", "TOPIC_BLOCKS", "VIEWER_FEATURES", "VIEWER_SCHEMA",
    "Engagement", "Feature", "StreamerRecord", "ViewerRecord", "add_engagement", "add_follow",
    "add_history", "candidate_column_names", "candidate_features", "candidate_width",
    "count_engagement", "is_followed", "minutes_watched",
    "pair_features", "record_watches", "streamer_stats", "streamer_tables",
    "viewer_column_names", "viewer_features", "viewer_width",
]
