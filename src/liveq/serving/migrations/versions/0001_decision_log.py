"""The decision log: models, splits, streamers, viewers, decisions, events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = 128


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("version", sa.String(ID), primary_key=True),
        sa.Column("run_path", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("promoted_at", sa.Float),
        sa.Column("retired_at", sa.Float),
    )
    op.create_table(
        "splits",
        sa.Column("split_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("arms", sa.JSON, nullable=False),
    )
    op.create_table(
        "streamers",
        sa.Column("streamer_id", sa.String(ID), primary_key=True),
        sa.Column("topic", sa.JSON, nullable=False),
        sa.Column("viewers", sa.Float, nullable=False),
        sa.Column("live", sa.Boolean, nullable=False, index=True),
        sa.Column("live_since", sa.Float, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("impressions", sa.Float, nullable=False),
        sa.Column("clicks", sa.Float, nullable=False),
        sa.Column("watch_sum", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "viewers",
        sa.Column("viewer_id", sa.String(ID), primary_key=True),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    _decisions()
    op.create_table(
        "events",
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(ID), nullable=False, unique=True),
        sa.Column("decision_id", sa.String(32), nullable=False, index=True),
        sa.Column("viewer_id", sa.String(ID), nullable=False),
        sa.Column("streamer_id", sa.String(ID)),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False, index=True),
        sa.Column("response", sa.JSON, nullable=False),
    )


def _decisions() -> None:
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(32), primary_key=True),
        sa.Column("viewer_id", sa.String(ID), nullable=False, index=True),
        sa.Column("created_at", sa.Float, nullable=False, index=True),
        sa.Column("request_time", sa.Float, nullable=False),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False, index=True),
        sa.Column("session_step", sa.Integer, nullable=False),
        sa.Column("model_version", sa.String(ID), nullable=False),
        sa.Column("arm", sa.String(ID), nullable=False),
        sa.Column("exploration", sa.JSON, nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("candidates", sa.JSON, nullable=False),
        sa.Column("logged", sa.Boolean, nullable=False),
        sa.Column("log_probability", sa.Float, nullable=False),
        sa.Column("features", sa.JSON),
        sa.Column("scores", sa.JSON),
        sa.Column("probabilities", sa.JSON),
        sa.Column("slate", sa.JSON, nullable=False),
        sa.Column("slate_positions", sa.JSON, nullable=False),
        sa.Column("slate_probability", sa.Float, nullable=False),
        sa.Column("item_probabilities", sa.JSON),
    )


def downgrade() -> None:
    for table in ("events", "decisions", "viewers", "streamers", "splits", "models"):
        op.drop_table(table)
