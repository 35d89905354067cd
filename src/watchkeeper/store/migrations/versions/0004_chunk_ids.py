"""Chunks also hold their events' ids, times and versions.

A window then reads per chunk which row range it covers (an aggregate the database computes
over the covering index) instead of one Python tuple per event; rows are fetched one by one
only for chunks the window covers with gaps. Existing chunks are filled from ``events``
(positions of events never stored, i.e. duplicates dropped at insert, get an empty id and a
NaN time; nothing refers to them).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_chunks") as batch:
        batch.add_column(sa.Column("ids", sa.Text(), nullable=True))
        batch.add_column(sa.Column("ts", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("versions", sa.Text(), nullable=True))
    bind = op.get_bind()
    chunks = sa.table("event_chunks", sa.column("id"), sa.column("ids"), sa.column("ts"),
                      sa.column("versions"))  # fmt: skip
    for chunk_id, n_rows in bind.execute(sa.text("SELECT id, n_rows FROM event_chunks")).all():
        ids: list[str] = [""] * n_rows
        ts = np.full(n_rows, np.nan)
        versions: list[str | None] = [None] * n_rows
        rows = bind.execute(
            sa.text("SELECT chunk_row, event_id, ts, version FROM events WHERE chunk_id = :c"),
            {"c": chunk_id},
        ).all()
        for row, event_id, t, version in rows:
            ids[row], ts[row], versions[row] = event_id, t, version
        bind.execute(
            sa.update(chunks)
            .where(chunks.c.id == chunk_id)
            .values(ids=json.dumps(ids), ts=ts.tobytes(), versions=json.dumps(versions))
        )


def downgrade() -> None:
    with op.batch_alter_table("event_chunks") as batch:
        batch.drop_column("versions")
        batch.drop_column("ts")
        batch.drop_column("ids")
