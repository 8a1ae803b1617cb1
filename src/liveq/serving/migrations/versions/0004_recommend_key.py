"""decisions.request_key and decisions.response: idempotent recommendations.

A client that retries `POST /v1/recommend` with the same `idempotency_key` (after a
timeout, say) gets the first decision again and no second decision is logged. The key is
unique (NULL for requests without one: any number of those); the answer given is kept
beside it, as `events.response` is for feedback.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("request_key", sa.String(128), nullable=True))
        batch.add_column(sa.Column("response", sa.JSON, nullable=True))
    op.create_index("uq_decisions_request_key", "decisions", ["request_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_decisions_request_key", "decisions")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("response")
        batch.drop_column("request_key")
