"""Signed-out web sessions in the store (every worker and node sees a sign-out at once).

Earlier versions kept this table themselves: in the PostgreSQL database (created on first use, same
name and columns: adopted here with its rows) or, with SQLite, in a file of its own beside the database
(``<name>-web-signed-out.sqlite``: its rows still in force are copied here; the file is no longer read).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if sa.inspect(bind).has_table("web_signed_out_session"):
        op.create_index("ix_web_signed_out_session_until", "web_signed_out_session", ["until"])
        return
    table = op.create_table(
        "web_signed_out_session",
        sa.Column("session_hash", sa.String(64), primary_key=True),
        sa.Column("until", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_web_signed_out_session_until", "web_signed_out_session", ["until"])
    old = _old_sqlite_file(bind)
    if old is not None:
        try:
            with sqlite3.connect(f"file:{old}?mode=ro", uri=True) as conn:
                rows = conn.execute("SELECT session_hash, until FROM web_signed_out_session WHERE until >= ?",
                                    (int(time.time()),)).fetchall()
        except sqlite3.Error:
            rows = []  # not that table after all: nothing to keep
        op.bulk_insert(table, [{"session_hash": h, "until": u} for h, u in rows])


def _old_sqlite_file(bind: sa.Connection) -> Path | None:
    database = bind.engine.url.database
    if bind.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    old = path.with_name(f"{path.stem}-web-signed-out.sqlite")
    return old if old.is_file() else None


def downgrade() -> None:
    op.drop_table("web_signed_out_session")
