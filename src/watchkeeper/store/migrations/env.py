"""Alembic environment: migrations run on the connection the :class:`Store` passes in.

The store opens a write transaction (and on PostgreSQL takes an advisory lock), then runs
``alembic upgrade head`` inside it, so two processes opening a fresh database at once do not
both create the tables.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
