"""Per-event outlier scores (``outlier_scores``) and the audit log of admin actions.

``outlier_scores`` holds one row per scored event (its id, time, scorer, score and conformal
p-value), indexed by p-value so the sample explorer lists a model's most unusual events fast.
It has no foreign key, like ``events``: the runner writes whole windows at a time.
``audit_log`` records who did what to which project (token creation, configuration changes,
alias moves).

Revision ID: 0010
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outlier_scores",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(256), nullable=False),
        sa.Column("version", sa.String(128), nullable=True),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("score", sa.Double, nullable=True),
        sa.Column("p_value", sa.Double, nullable=True),
        sa.Column("window_end", sa.Double, nullable=True),
    )
    op.create_index("ix_outlier_scores_model_p", "outlier_scores", ["model_id", "p_value"])
    op.create_index("ix_outlier_scores_model_ts", "outlier_scores", ["model_id", "ts"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(128), nullable=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("actor", sa.String(256), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(512), nullable=True),
        sa.Column("details", sa.Text, nullable=True),
    )
    op.create_index("ix_audit_log_project_at", "audit_log", ["project", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_project_at", "audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_outlier_scores_model_ts", "outlier_scores")
    op.drop_index("ix_outlier_scores_model_p", "outlier_scores")
    op.drop_table("outlier_scores")
