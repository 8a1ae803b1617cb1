"""decisions.features, .scores and .probabilities as packed binary (`liveq.serving.packed`).

Encoding every candidate's features and probabilities as JSON was about a fifth of a
decision's write. New rows hold the arrays' raw bytes behind a short header; rows
written before keep their JSON, and `PackedArrays` reads both, so a log that spans the
change joins, learns and explains as before.

PostgreSQL: the three `json` columns become `bytea`, each old value its JSON text in
UTF-8. SQLite: nothing changes on disk (a declared column type there is only an
affinity, and a BLOB is stored as it is under the JSON columns' NUMERIC affinity), so a
large log is not copied.

Downgrade writes every packed value back as JSON (and, on PostgreSQL, the columns back
to `json`).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = ("features", "scores", "probabilities")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in COLUMNS:
        op.alter_column("decisions", name, type_=sa.LargeBinary, existing_nullable=True,
                        postgresql_using=f"convert_to({name}::text, 'UTF8')")


def downgrade() -> None:
    from liveq.serving.packed import PackedArrays  # reads packed and JSON values alike

    conn = op.get_bind()
    read = sa.table("decisions", sa.column("decision_id"),
                    *(sa.column(name, PackedArrays()) for name in COLUMNS))
    rows = conn.execute(sa.select(read)).mappings().all()
    if conn.dialect.name == "postgresql":
        for name in COLUMNS:
            op.alter_column("decisions", name, type_=sa.JSON, existing_nullable=True,
                            postgresql_using="NULL")
    write = sa.table("decisions", sa.column("decision_id"),
                     *(sa.column(name, sa.JSON) for name in COLUMNS))
    for row in rows:
        conn.execute(sa.update(write).where(write.c.decision_id == row["decision_id"])
                     .values({name: _json_value(row[name]) for name in COLUMNS}))


def _json_value(value):
    """JSON's `null` for a missing value (a plain None would be bound as SQL NULL)."""
    return sa.null() if value is None else value
