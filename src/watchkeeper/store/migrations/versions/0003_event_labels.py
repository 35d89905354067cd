"""Each event row carries its label, so reading a window needs no join.

A join of the window's events to ``labels`` is planned badly by PostgreSQL on freshly loaded
tables (no statistics yet: a nested loop over every label of the model per event, seconds for
10,000 events). ``labels`` stays the record of every label, including those that arrive before
their event; ``events.label`` is a copy kept in step by ``log_labels`` and ``log_events``, and is
part of the covering window index.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("label", sa.Text(), nullable=True))
    op.execute(
        "UPDATE events SET label = (SELECT l.label FROM labels l "
        "WHERE l.model_id = events.model_id AND l.event_id = events.event_id) "
        "WHERE EXISTS (SELECT 1 FROM labels l "
        "WHERE l.model_id = events.model_id AND l.event_id = events.event_id)"
    )
    op.drop_index("ix_events_model_ts", table_name="events")
    op.create_index(
        "ix_events_model_ts",
        "events",
        ["model_id", "ts", "event_id", "version", "chunk_id", "chunk_row", "label"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_events_model_ts", table_name="events")
    op.create_index(
        "ix_events_model_ts",
        "events",
        ["model_id", "ts", "event_id", "version", "chunk_id", "chunk_row"],
        unique=False,
    )
    with op.batch_alter_table("events") as batch:
        batch.drop_column("label")
