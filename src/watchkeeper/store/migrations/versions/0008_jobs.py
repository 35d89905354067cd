"""Training jobs: one row per run of a trainer, its state, logs and outputs.

Revision ID: 0008
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("spec", sa.Text, nullable=True),
        sa.Column("trigger", sa.Text, nullable=True),
        sa.Column("outputs", sa.Text, nullable=True),
        sa.Column("log", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("holder", sa.String(256), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("started_at", sa.Double, nullable=True),
        sa.Column("finished_at", sa.Double, nullable=True),
        sa.Column("heartbeat_at", sa.Double, nullable=True),
    )
    op.create_index("ix_jobs_model_id", "jobs", ["model_id", "id"])
    op.create_index("ix_jobs_state", "jobs", ["state"])


def downgrade() -> None:
    op.drop_index("ix_jobs_state", "jobs")
    op.drop_index("ix_jobs_model_id", "jobs")
    op.drop_table("jobs")
