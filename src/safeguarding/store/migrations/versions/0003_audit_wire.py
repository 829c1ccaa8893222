"""The audit event's wire facts (what the client sent that the assurance report reads; never patient
data). Nullable: records written before keep NULL, and their hashes (``AuditEvent.fields``).

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
    op.add_column("audit_events", sa.Column("wire", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("wire")
