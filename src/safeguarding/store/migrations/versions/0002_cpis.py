"""CP-IS: plans, the access history, missed-appointment alerts and the notification queue.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cpis_plans",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("authority_ods", sa.String(16), nullable=False),
        sa.Column("nhs_number", sa.String(10), nullable=False),
        sa.Column("plan_type", sa.String(3), nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date),
        sa.Column("authority_name", sa.Text, nullable=False),
        sa.Column("office_phone", sa.String(32)),
        sa.Column("emergency_phone", sa.String(32)),
        sa.Column("withdrawn_at", sa.String(32)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("changed_at", sa.String(32), nullable=False),
        sa.Column("changed_by", sa.String(32)),
        sa.Column("request_id", sa.String(128)),
        sa.UniqueConstraint("authority_ods", "nhs_number", "plan_type", name="ux_cpis_plans_key"),
    )
    op.create_index("ix_cpis_plans_nhs_number", "cpis_plans", ["nhs_number"])
    op.create_table(
        "cpis_accesses",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("nhs_number", sa.String(10), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("listed", sa.Boolean, nullable=False),
    )
    op.create_index("ix_cpis_accesses_history", "cpis_accesses", ["nhs_number", "listed", "recorded_at"])
    op.create_index("ix_cpis_accesses_user", "cpis_accesses", ["nhs_number", "user_id", "recorded_at"])
    op.create_table(
        "cpis_alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("nhs_number", sa.String(10), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_table(
        "cpis_notifications",
        sa.Column("authority_ods", sa.String(16), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("queued_at", sa.String(32), nullable=False),
        sa.Column("acknowledged_at", sa.String(32)),
    )
    op.create_index("ix_cpis_notifications_pending", "cpis_notifications",
                    ["authority_ods", "acknowledged_at", "queued_at"])


def downgrade() -> None:
    op.drop_table("cpis_notifications")
    op.drop_table("cpis_alerts")
    op.drop_table("cpis_accesses")
    op.drop_table("cpis_plans")
