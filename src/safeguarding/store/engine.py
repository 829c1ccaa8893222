"""The SQL engines and the schema's migrations, for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` and takes the write lock at the start of every
transaction (``BEGIN IMMEDIATE``), so a transaction never fails half-way on a lock upgrade.
PostgreSQL runs at READ COMMITTED; the correctness-critical steps rely on row locks and unique
indexes, never on reads made earlier in the transaction.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from ..fileutil import private_file
from .writer_lock import WriterLock

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 7_318_431_902  # PostgreSQL advisory lock key for `db upgrade`


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for ``url``. With SQLite, a ``read_only`` engine reads a WAL snapshot without
    taking the write lock; every other transaction takes it up front."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:") and Path(database).parent.is_dir():
            # The file holds patient data: created 0600 (or narrowed to it) before SQLite opens it, which gives
            # its WAL and shared-memory files the same permissions. A missing directory stays missing: the
            # store is then unavailable, as configured.
            private_file(Path(database))
        # Enough pooled connections for every request thread, so none waits on the pool itself.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8,
                               max_overflow=40)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let the "begin" hook below open transactions
            # wal_autocheckpoint: copy the WAL back every ~40 MB rather than every 4 MB. The pages every batch
            # touches (the chain head, the newest audit leaves) are then copied once per checkpoint, not ten
            # times: ~15% more requests a second here (docs/performance.md). Durability is the same.
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000",
                           "wal_autocheckpoint=10000"):
                dbapi_conn.execute(f"PRAGMA {pragma}")

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # connect_timeout: a database host that does not answer at all (not even a refusal) fails a request in
        # seconds, as a 503, rather than after the operating system's minutes of TCP retries. The URL may set it.
        timeout = {} if "connect_timeout" in parsed.query else {"connect_timeout": 5}
        return create_engine(parsed, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=timeout)
    raise ValueError("database URL must be sqlite:/// or postgresql://")


def upgrade_schema(engine: Engine) -> None:
    """Bring the schema to the newest migration. Safe to run from several nodes at once."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def schema_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _writer_lock_for(engine: Engine) -> WriterLock | None:
    """The lock every process writing this SQLite file takes first; none for PostgreSQL or in memory."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return WriterLock.beside(Path(database))


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001, S110 - a broken connection is being thrown away anyway
        pass
