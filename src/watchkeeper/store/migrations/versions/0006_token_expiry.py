"""API tokens gain an expiry and a last-used time.

``expires_at`` (epoch seconds, null: never) is checked at every authentication;
``last_used_at`` is written when a token authenticates, at most once a minute per token.

Number 0006 was reserved for this change; it landed after 0007 and 0010, so it follows them.

Revision ID: 0006
Revises: 0010 (revision ids are names reserved per change; the chain, not the number, orders them)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("expires_at", sa.Double, nullable=True))
    op.add_column("api_tokens", sa.Column("last_used_at", sa.Double, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
