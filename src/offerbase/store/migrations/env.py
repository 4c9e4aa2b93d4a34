"""Alembic environment: always run with a connection handed in by offerbase.store.migrate."""

from alembic import context

from offerbase.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables instead
)
with context.begin_transaction():
    context.run_migrations()
