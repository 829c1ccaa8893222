"""Demographics, FGM indicators and the audit chain.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("nhs_number", sa.String(10), primary_key=True),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("birth_date", sa.Date),
        sa.Column("gender", sa.String(16)),
        sa.Column("security", sa.String(16), nullable=False),
        sa.Column("gp_ods_code", sa.String(16)),
        sa.Column("deceased", sa.Boolean, nullable=False),
        sa.Column("superseded_by", sa.String(10)),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "fgm_indicators",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("nhs_number", sa.String(10), nullable=False),
        sa.Column("assessment_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("removed_at", sa.String(32)),
        sa.Column("removed_by", sa.Text),
        sa.Column("removal_reason", sa.String(16)),
    )
    op.create_index("ix_fgm_indicators_nhs_number", "fgm_indicators", ["nhs_number"])
    op.create_index(
        "ux_fgm_indicators_one_active",
        "fgm_indicators",
        ["nhs_number"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("api", sa.String(32), nullable=False),
        sa.Column("interaction", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("correlation_id", sa.String(128)),
        sa.Column("trace_id", sa.String(128)),
        sa.Column("system_asid", sa.String(32)),
        sa.Column("system_ods", sa.String(16)),
        sa.Column("user_id", sa.String(64)),
        sa.Column("role_profile_id", sa.String(64)),
        sa.Column("role_code", sa.String(64)),
        sa.Column("org_code", sa.String(16)),
        sa.Column("nhs_number", sa.String(10)),
        sa.Column("resource_id", sa.String(64)),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_nhs_number", "audit_events", ["nhs_number"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.execute(sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')"))


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_table("audit_events")
    op.drop_table("fgm_indicators")
    op.drop_table("patients")
