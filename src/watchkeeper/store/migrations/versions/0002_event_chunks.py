"""Event values in per-batch columnar chunks; the events table keeps the key, time and position.

Revision 0001 stored each event's values in its own row (a float64 blob, a JSON list, an
embedding blob). Reading a 100,000-event window then moved 100,000 wide rows through the
driver; now a window reads 100,000 narrow index rows plus about 100 chunk rows and decodes
each chunk with one ``np.frombuffer``. Existing events are regrouped into chunks of up to
1,000 events per (model, feature schema), in time order.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_CHUNK = 1000


def _vectors(blobs: list[bytes | None], dtype: Any) -> tuple[bytes | None, int | None]:
    present = [b for b in blobs if b is not None]
    if not present:
        return None, None
    width = len(present[0]) // np.dtype(dtype).itemsize
    out = np.full((len(blobs), width), np.nan, dtype=dtype)
    for i, b in enumerate(blobs):
        if b is not None:
            out[i] = np.frombuffer(b, dtype=dtype)
    return out.tobytes(), width


def _convert(bind: sa.Connection) -> None:
    chunk_columns = (
        "id model_id schema_id n_rows min_ts max_ts nums objs embeddings embedding_dim probs "
        "n_classes created_at"
    )
    chunks = sa.table("event_chunks", *(sa.column(c) for c in chunk_columns.split()))
    event_columns = "model_id event_id ts version chunk_id chunk_row received_at"
    new = sa.table("events_new", *(sa.column(c) for c in event_columns.split()))
    groups = bind.execute(sa.text("SELECT DISTINCT model_id, schema_id FROM events")).all()
    now = time.time()
    for model_id, schema_id in groups:
        rows = bind.execute(
            sa.text(
                "SELECT event_id, ts, version, nums, objs, embedding, probs, received_at "
                "FROM events WHERE model_id = :m AND schema_id = :s ORDER BY ts, event_id"
            ),
            {"m": model_id, "s": schema_id},
        ).all()
        for start in range(0, len(rows), _CHUNK):
            part = rows[start : start + _CHUNK]
            nums = [r[3] for r in part]
            objs = [json.loads(r[4]) for r in part] if part[0][4] is not None else None
            embeddings, dim = _vectors(
                [None if r[5] is None else bytes(r[5]) for r in part], np.float32
            )
            probs, k = _vectors([None if r[6] is None else bytes(r[6]) for r in part], np.float64)
            chunk_id = bind.execute(
                sa.insert(chunks)
                .values(
                    model_id=model_id,
                    schema_id=schema_id,
                    n_rows=len(part),
                    min_ts=min(r[1] for r in part),
                    max_ts=max(r[1] for r in part),
                    nums=None if nums[0] is None else b"".join(bytes(b) for b in nums),
                    objs=None
                    if objs is None
                    else json.dumps([list(c) for c in zip(*objs, strict=True)]),
                    embeddings=embeddings,
                    embedding_dim=dim,
                    probs=probs,
                    n_classes=k,
                    created_at=now,
                )
                .returning(chunks.c.id)
            ).scalar_one()
            bind.execute(
                sa.insert(new),
                [
                    {
                        "model_id": model_id,
                        "event_id": r[0],
                        "ts": r[1],
                        "version": r[2],
                        "chunk_id": chunk_id,
                        "chunk_row": i,
                        "received_at": r[7],
                    }
                    for i, r in enumerate(part)
                ],
            )


def upgrade() -> None:
    op.create_table(
        "event_chunks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("min_ts", sa.Double(), nullable=False),
        sa.Column("max_ts", sa.Double(), nullable=False),
        sa.Column("nums", sa.LargeBinary(), nullable=True),
        sa.Column("objs", sa.Text(), nullable=True),
        sa.Column("embeddings", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_dim", sa.Integer(), nullable=True),
        sa.Column("probs", sa.LargeBinary(), nullable=True),
        sa.Column("n_classes", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"]),
        sa.ForeignKeyConstraint(["schema_id"], ["feature_schemas.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_event_chunks_model_max_ts", "event_chunks", ["model_id", "max_ts"], unique=False
    )
    # A new table rather than ALTERs: the old foreign keys have no names to drop by, and
    # SQLite would rebuild the table anyway.
    op.create_table(
        "events_new",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=256), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=True),
        sa.Column("chunk_id", sa.Integer(), nullable=False),
        sa.Column("chunk_row", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"]),
        sa.ForeignKeyConstraint(["chunk_id"], ["event_chunks.id"]),
        sa.PrimaryKeyConstraint("model_id", "event_id"),
    )
    _convert(op.get_bind())
    op.drop_index("ix_events_model_ts", table_name="events")
    op.drop_table("events")
    op.rename_table("events_new", "events")
    # covering: a window is read from this index alone, without visiting the table
    op.create_index(
        "ix_events_model_ts",
        "events",
        ["model_id", "ts", "event_id", "version", "chunk_id", "chunk_row"],
        unique=False,
    )


def downgrade() -> None:
    raise NotImplementedError(
        "downgrading below 0002 would re-encode every event one row at a time; restore a "
        "backup taken before the upgrade instead"
    )
