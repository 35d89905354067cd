"""The model registry: aliases and their history, artifact manifests, signatures, lineage.

``model_aliases`` holds where each alias (champion, challenger, fallback, any name) points now;
``alias_moves`` every move (from, to, when, who, why) as an audit trail that rollback reads.
``model_versions`` gains the artifact's manifest, its signature and the version's lineage.

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for name in ("manifest", "signature", "lineage"):
        op.add_column("model_versions", sa.Column(name, sa.Text, nullable=True))
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "alias_moves",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("from_version", sa.String(128), nullable=True),
        sa.Column("to_version", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(256), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("at", sa.Double, nullable=False),
    )
    op.create_index("ix_alias_moves_model_alias", "alias_moves", ["model_id", "alias", "id"])


def downgrade() -> None:
    op.drop_index("ix_alias_moves_model_alias", "alias_moves")
    op.drop_table("alias_moves")
    op.drop_table("model_aliases")
    with op.batch_alter_table("model_versions") as batch:
        for name in ("lineage", "signature", "manifest"):
            batch.drop_column(name)
