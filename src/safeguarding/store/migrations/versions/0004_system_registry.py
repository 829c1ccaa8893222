"""The system registry in the database (PostgreSQL deployments: every node sees a revocation within seconds).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "system_registry",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text),
        sa.Column("changed_at", sa.String(32)),
    )
    op.bulk_insert(table, [{"id": 1, "version": 0, "document": None, "changed_at": None}])


def downgrade() -> None:
    op.drop_table("system_registry")
