"""Alembic environment of the decision log: runs on the connection `liveq.serving.db`
hands over (`config.attributes["connection"]`), never on a URL of its own."""

from alembic import context

from liveq.serving.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
