"""The statements for signed-out web sessions (``web_signed_out_session``, migration 0005).

Fixed SQL on the driver's connection, as the other statements on every request's path (rows.py): the
check runs on every request from a signed-in browser. ``ON CONFLICT DO NOTHING`` is understood by both
SQLite and PostgreSQL: signing out twice, or from two workers at once, records one row.
"""

from __future__ import annotations

from .rows import _Sql

REVOKE_WEB_SESSION = _Sql("INSERT INTO web_signed_out_session (session_hash, until) VALUES (:session_hash, :until) "
                          "ON CONFLICT (session_hash) DO NOTHING")
FORGET_ENDED_WEB_SESSIONS = _Sql("DELETE FROM web_signed_out_session WHERE until < :now")
WEB_SESSION_REVOKED = _Sql("SELECT 1 FROM web_signed_out_session WHERE session_hash = :session_hash")
