"""A catalogue version on SQLite, kept by triggers: the catalogue cache's check in constant
time.

Every recommendation asks whether the live catalogue changed since its worker cached it.
The aggregate fingerprint over the live rows (count, sums, maximum) cost about 0.2 ms of
SQLite's own time per request with 1,000 live streamers. Here a one-row table counts the
changes instead: `members` is bumped by every insert, delete, or update of anything but
the logged counters, `counters` by every update of the counters, each by a trigger, so
every writer (the service, `liveq models`, a hand-run SQL statement) moves it. SQLite
serialises writers on one lock already, so the row adds no contention.

PostgreSQL keeps the fingerprint: there one version row would be locked to the end of
every transaction that touches a streamer and serialise the workers' commits.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "catalogue_version"
MEMBER_COLUMNS = "streamer_id, topic, viewers, live, live_since, first_seen, updated_at"
COUNTER_COLUMNS = "impressions, clicks, watch_sum"
TRIGGERS = {
    "streamers_version_insert": ("AFTER INSERT", "members"),
    "streamers_version_delete": ("AFTER DELETE", "members"),
    "streamers_version_members": (f"AFTER UPDATE OF {MEMBER_COLUMNS}", "members"),
    "streamers_version_counters": (f"AFTER UPDATE OF {COUNTER_COLUMNS}", "counters"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1), "
               "members INTEGER NOT NULL, counters INTEGER NOT NULL)")
    op.execute(f"INSERT INTO {TABLE} (id, members, counters) VALUES (1, 0, 0)")
    for name, (when, column) in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} ON streamers BEGIN UPDATE {TABLE} "
                   f"SET {column} = {column} + 1 WHERE id = 1; END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    op.execute(f"DROP TABLE {TABLE}")
