"""Sessions that have been signed out, shared by every worker process and host.

A session's state travels in its sealed cookie, so signing out must also be remembered on the server:
otherwise a copy of the cookie taken before sign-out would keep working until its idle limit. Sign-out
records (a hash of) the session's id here until the session's absolute lifetime would have ended, and
every request from a signed-in session checks it. With PostgreSQL the table lives in the service's
database; with SQLite in a small file of its own next to the database, so it never competes with the
store's single writer.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, create_engine, delete, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url

_METADATA = MetaData()
SIGNED_OUT = Table("web_signed_out_session", _METADATA,
                   Column("session_hash", String(64), primary_key=True),
                   Column("until", BigInteger, nullable=False))


def _engine(database_url: str) -> Engine:
    parsed = make_url(database_url)
    if parsed.get_backend_name() == "sqlite":
        database = Path(parsed.database or "safeguarding.sqlite")
        own = database.with_name(f"{database.stem}-web-signed-out.sqlite")
        engine = create_engine(f"sqlite:///{own}", connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _wal(dbapi_conn: object, _record: object) -> None:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")  # type: ignore[attr-defined]

        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_size=2, max_overflow=4, pool_pre_ping=True)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SignedOut:
    def __init__(self, database_url: str) -> None:
        self.engine = _engine(database_url)
        _METADATA.create_all(self.engine, checkfirst=True)
        self._insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert

    def record(self, session_id: str, until: int) -> None:
        """Session ``session_id`` is signed out, everywhere; forget it after ``until`` (epoch seconds)."""
        with self.engine.begin() as conn:
            conn.execute(self._insert(SIGNED_OUT).values(session_hash=_hash(session_id), until=until)
                         .on_conflict_do_nothing())
            conn.execute(delete(SIGNED_OUT).where(SIGNED_OUT.c.until < int(time.time())))

    def holds(self, session_id: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(select(SIGNED_OUT.c.until).where(SIGNED_OUT.c.session_hash == _hash(session_id)))
            return found.first() is not None

    def close(self) -> None:
        self.engine.dispose()
