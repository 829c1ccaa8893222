"""Table definitions (SQLAlchemy Core), shared by every SQL dialect.

Timestamps are stored as UTC ISO 8601 text (``2026-11-23T10:00:00.000000Z``): identical on every
backend, sortable, and hashed by the audit chain exactly as stored.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

patients = Table(
    "patients",
    metadata,
    Column("nhs_number", String(10), primary_key=True),
    Column("verified", Boolean, nullable=False),
    Column("birth_date", Date),
    Column("gender", String(16)),
    Column("security", String(16), nullable=False),
    Column("gp_ods_code", String(16)),
    Column("deceased", Boolean, nullable=False),
    Column("superseded_by", String(10)),
    Column("updated_at", String(32), nullable=False),
)

fgm_indicators = Table(
    "fgm_indicators",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("nhs_number", String(10), nullable=False),
    Column("assessment_date", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("removed_at", String(32)),
    Column("removed_by", Text),
    Column("removal_reason", String(16)),
    Index("ix_fgm_indicators_nhs_number", "nhs_number"),
    # At most one active indicator per child, enforced by the database itself.
    Index(
        "ux_fgm_indicators_one_active",
        "nhs_number",
        unique=True,
        sqlite_where=text("status = 'active'"),
        postgresql_where=text("status = 'active'"),
    ),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("recorded_at", String(32), nullable=False),
    Column("api", String(32), nullable=False),
    Column("interaction", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("correlation_id", String(128)),
    Column("trace_id", String(128)),
    Column("system_asid", String(32)),
    Column("system_ods", String(16)),
    Column("user_id", String(64)),
    Column("role_profile_id", String(64)),
    Column("role_code", String(64)),
    Column("org_code", String(16)),
    Column("nhs_number", String(10)),
    Column("resource_id", String(64)),
    Column("wire", Text),  # migration 0003
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_nhs_number", "nhs_number"),
)

# One row (id = 1): the last sequence number and hash. Locking it serialises appends to the chain.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

# CP-IS ---------------------------------------------------------------------------------------------

cpis_plans = Table(
    "cpis_plans",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("authority_ods", String(16), nullable=False),
    Column("nhs_number", String(10), nullable=False),
    Column("plan_type", String(3), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("authority_name", Text, nullable=False),
    Column("office_phone", String(32)),
    Column("emergency_phone", String(32)),
    Column("withdrawn_at", String(32)),
    Column("version", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("changed_at", String(32), nullable=False),
    Column("changed_by", String(32)),
    Column("request_id", String(128)),
    # The key of a plan: one per authority, child and type, enforced by the database itself.
    UniqueConstraint("authority_ods", "nhs_number", "plan_type", name="ux_cpis_plans_key"),
    Index("ix_cpis_plans_nhs_number", "nhs_number"),
)

# Every recorded unscheduled access (kept: the history shows the newest 25 listed ones).
cpis_accesses = Table(
    "cpis_accesses",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("nhs_number", String(10), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("author", Text, nullable=False),
    Column("listed", Boolean, nullable=False),
    Index("ix_cpis_accesses_history", "nhs_number", "listed", "recorded_at"),
    Index("ix_cpis_accesses_user", "nhs_number", "user_id", "recorded_at"),
)

cpis_alerts = Table(
    "cpis_alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("nhs_number", String(10), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("author", Text, nullable=False),
    Column("note", Text),
)

# The notification queue: one row per event and authority, pending until acknowledged.
cpis_notifications = Table(
    "cpis_notifications",
    metadata,
    Column("authority_ods", String(16), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("queued_at", String(32), nullable=False),
    Column("acknowledged_at", String(32)),
    Index("ix_cpis_notifications_pending", "authority_ods", "acknowledged_at", "queued_at"),
)

# The system registry of a PostgreSQL deployment (security/registry.py), shared by every node: one row
# (id = 1), the whole document (``{"systems": [...], "revoked": [...]}``, as systems.json holds it) replaced
# in one transaction; ``version`` counts the changes, so a node sees a change by reading one integer.
# ``document`` is NULL until the first node imports its systems.json.
system_registry = Table(
    "system_registry",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("document", Text),
    Column("changed_at", String(32)),
)

# Web sessions that were signed out (web/signed_out.py): a SHA-256 of the session id, kept until the
# session's absolute lifetime would have ended (epoch seconds), then deleted by a later sign-out.
web_signed_out_session = Table(
    "web_signed_out_session",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("until", BigInteger, nullable=False),
    Index("ix_web_signed_out_session_until", "until"),
)
