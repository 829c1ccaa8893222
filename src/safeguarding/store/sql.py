"""The SQL store: one implementation for SQLite (embedded default) and PostgreSQL (``SqlStore``).

Its parts: engine.py (engines and migrations), rows.py (fixed statements and row mapping),
transaction.py (a unit of work's transaction), writer.py (group commit). The names other modules import
from here (``make_engine``, ``sqlite_url``, ``upgrade_schema``, ``schema_revision``, ``SqlTransaction``)
stay importable from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from .. import inline
from ..audit.checkpoints import Checkpointer
from ..audit.spool import AuditSpool
from ..domain.audit import AuditEvent, AuditRecord
from ..domain.cpis import (
    Access,
    Notification,
    Plan,
)
from ..domain.fgm import Indicator
from ..metrics import STORE_ERRORS
from .checkpointer import WalCheckpointer
from .engine import (
    _MIGRATIONS,
    _close_quietly,
    _writer_lock_for,
    make_engine,
    schema_revision,
    sqlite_url,
    upgrade_schema,
)
from .failures import unavailable_on
from .interface import StoreUnavailable
from .pipelined_reads import PipelinedReads
from .row_reads import RowReads
from .rows import (
    _Sql,
)
from .transaction import SqlBatch, SqlTransaction
from .writer import LoopWriter, ThreadWriter

__all__ = ["_MIGRATIONS", "SqlStore", "SqlTransaction", "make_engine", "schema_revision", "sqlite_url",
           "upgrade_schema"]

T = TypeVar("T")

log = logging.getLogger(__name__)


class _Readers:
    """Driver connections for the hot reads outside a transaction (autocommit: each SELECT sees the
    latest committed state), kept for reuse. Cheaper than a pooled SQLAlchemy connection, whose
    checkout, BEGIN and reset-on-return cost more than the read itself."""

    def __init__(self, engine: Engine, keep: int = 8) -> None:
        self._engine, self._keep = engine, keep
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._errors: tuple[type[Exception], ...] = (engine.dialect.loaded_dbapi.Error,)
        self._postgresql = engine.dialect.name == "postgresql"
        self._pipelined: PipelinedReads | None = None  # PostgreSQL, from requests on an event loop

    def one_on_loop(self, statement: _Sql, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """``one`` for a request running inline on the event loop: on PostgreSQL, through the reader thread
        (the loop serves others while the row travels); on SQLite, read here (microseconds, no network)."""
        if self._postgresql:
            return self._pipelined_reads().one(statement.postgresql, params)
        return self.one(statement, params)

    def one(self, statement: _Sql, params: dict[str, Any]) -> tuple[Any, ...] | None:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self.connect()
        try:
            row = conn.execute(statement.text(self._engine.dialect.name), params).fetchone()
        except self._errors as exc:
            _close_quietly(conn)
            STORE_ERRORS.inc()
            log.error("store.error", extra={"event": "STORE_ERROR", "error": type(exc).__name__})
            raise StoreUnavailable() from exc
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(conn)
                conn = None
        if conn is not None:
            _close_quietly(conn)
        return row  # type: ignore[no-any-return]

    def connect(self) -> Any:
        """A new driver connection made as the reader engine makes them (SQLite's PRAGMAs), in autocommit."""
        with unavailable_on(OperationalError, *self._errors):
            pooled = self._engine.raw_connection()  # made as the engine makes them (SQLite's PRAGMAs)
        conn = pooled.driver_connection
        pooled.detach()  # ours from now on: the engine's pool neither counts nor resets it
        if self._engine.dialect.name == "postgresql":
            conn.autocommit = True  # type: ignore[union-attr]
        return conn

    def _pipelined_reads(self) -> PipelinedReads:
        if self._pipelined is None:
            with self._lock:
                if self._pipelined is None:
                    self._pipelined = PipelinedReads(self.connect, self._errors)
        return self._pipelined

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            pipelined, self._pipelined = self._pipelined, None
        for conn in idle:
            _close_quietly(conn)
        if pipelined is not None:
            pipelined.close()


class SqlStore(RowReads):
    """The store. Each unit of work ``run`` is given has a transaction of its own; the server's requests use it
    through ``EventLoopStore`` (event_loop.py), where units are group-committed."""

    def __init__(self, engine: Engine, audit_key: bytes, reader: Engine | None = None,
                 spool_dir: Path | None = None, checkpoints: Path | None = None) -> None:
        self.engine = engine
        self._reader = reader or engine
        self._audit_key = audit_key
        self._writer_mutex = threading.Lock()
        self._writer_turn: AbstractContextManager[object] = (
            self._writer_mutex if engine.dialect.name == "sqlite" else nullcontext()
        )
        dbapi = engine.dialect.loaded_dbapi
        # Hot statements run on the driver's connection, so its own errors mean "unavailable" too.
        self._failures = (OperationalError, IntegrityError, dbapi.OperationalError, dbapi.IntegrityError)
        self._readers = _Readers(self._reader)
        super().__init__(self._readers.one)  # the one-row reads (row_reads.py), on the calling thread
        self._sqlite = engine.dialect.name == "sqlite"
        self._loop_writers: dict[asyncio.AbstractEventLoop, LoopWriter[SqlTransaction]] = {}
        self._thread_writer: ThreadWriter[SqlTransaction] | None = None
        self._batch_conn: Connection | None = None  # the ThreadWriter's (PostgreSQL), kept from batch to batch
        self._kept_batch_conn: Connection | None = None  # the LoopWriters' (SQLite), between two batches
        self._closed = False
        self._checkpointer: WalCheckpointer | None = None
        self._writer_lock = threading.Lock()
        self._exclusive = _writer_lock_for(engine)
        self._spool = AuditSpool(spool_dir, self._append_spooled) if spool_dir is not None else None
        self._anchor = Checkpointer(checkpoints, audit_key, self.audit_head) if checkpoints is not None else None

    @classmethod
    def open(cls, url: str, audit_key: bytes, spool_dir: Path | None = None,
             checkpoints: Path | None = None) -> SqlStore:
        """A server's store. ``spool_dir``: where audit events wait while the database cannot be reached
        (audit/spool.py); without one, such an event's ``StoreUnavailable`` reaches the caller.
        ``checkpoints``: the file the chain head is appended to, MACed, every few seconds and at ``close``
        (audit/checkpoints.py)."""
        engine = make_engine(url)
        reader = make_engine(url, read_only=True) if engine.dialect.name == "sqlite" else engine
        return cls(engine, audit_key, reader, spool_dir, checkpoints)

    def spool_audit(self, event: AuditEvent) -> None:
        if self._spool is None:
            raise StoreUnavailable("no audit spool")
        self._spool.keep(event)

    def _append_spooled(self, events: list[AuditEvent]) -> None:
        with self.transaction() as tx:
            for event in events:
                tx.append_audit(event)

    @contextmanager
    def _read(self) -> Iterator[SqlTransaction]:
        with unavailable_on(OperationalError), self._reader.connect() as conn:
            yield SqlTransaction(conn, self._audit_key)

    def read_history(self, nhs_number: str) -> list[Indicator]:
        with self._read() as tx:
            return tx.indicator_history(nhs_number)

    def read_plans(self, nhs_number: str) -> list[Plan]:
        with self._read() as tx:
            return tx.plans_for(nhs_number)

    def read_accesses(self, nhs_number: str) -> list[Access]:
        with self._read() as tx:
            return tx.all_accesses(nhs_number)

    def read_notifications(self, authority_ods: str) -> list[Notification]:
        with self._read() as tx:
            return tx.all_notifications(authority_ods)

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        # SQLite has one writer at a time. Threads of this process queue on a mutex, and processes on the
        # writer lock (writer_lock.py), rather than in SQLite's busy handler, which sleeps with growing
        # back-off and leaves the lock idle between tries (seconds of tail latency under load).
        with (self._writer_turn, self._exclusive or nullcontext(), unavailable_on(*self._failures),
              self.engine.begin() as conn):
            tx = SqlTransaction(conn, self._audit_key)
            yield tx
            tx.finish()
            tx.flush(commit=True)  # PostgreSQL: the queued statements and COMMIT in one round trip

    def run(self, unit: Callable[[SqlTransaction], T],
            prefetch: Callable[[SqlTransaction], None] | None = None) -> T:
        """``unit`` in a transaction of its own, committed (durably) before this returns (``prefetch``, a way to
        queue reads ahead of a shared batch, has nothing to do here)."""
        with self.transaction() as tx:
            return unit(tx)

    def read_one_on_loop(self, statement: _Sql, params: dict[str, Any]) -> tuple[Any, ...] | None:
        return self._readers.one_on_loop(statement, params)

    def group_commit(self, unit: Callable[[SqlTransaction], T],
                     prefetch: Callable[[SqlTransaction], None] | None = None) -> T:
        """``unit`` in a transaction shared with other requests' units (group commit, ``writer.py``), committed
        (durably) before this returns. Only for a request running inline on the event loop (``inline.run``).
        ``unit`` may be run twice (the second time alone, after another unit of its batch failed), so it must
        do nothing but work with the transaction."""
        loop = inline.running_loop()
        if loop is None:
            raise RuntimeError("group commit is for requests running inline on the event loop (inline.run); "
                               "elsewhere use the store itself")
        failures = self._failures

        def guarded(tx: SqlTransaction) -> T:
            # As in ``transaction``: the database failing under a unit is the store being unavailable.
            with unavailable_on(*failures):
                return unit(tx)

        return self._writer_for(loop).run(guarded, prefetch)

    @contextmanager
    def _batch_transaction(self) -> Iterator[SqlTransaction]:
        """A PostgreSQL batch (``ThreadWriter``, one thread): on the writer's own connection, kept from batch to
        batch (no pool checkout and pre-ping each time) in autocommit, so that BEGIN goes with the chain head's
        lock in one round trip and COMMIT with the batch's writes in another.

        A batch locks the rows of many requests (CP-IS plans, indicators) and the chain head. Taken first,
        the head orders the batches of every process, so two can never hold rows the other waits for."""
        conn = self._batch_conn
        try:
            with unavailable_on(*self._failures):
                if conn is None:
                    conn = self.engine.connect()
                    conn.connection.driver_connection.autocommit = True  # type: ignore[union-attr]
                    self._batch_conn = conn
                tx = SqlTransaction(conn, self._audit_key, begin=True)
                tx.lock_audit_head_ahead()  # first, with BEGIN, in the batch's first round trip
                yield tx
                tx.finish()
                tx.flush(commit=True)
                conn.commit()  # SQLAlchemy's view of it (nothing is sent: the transaction is closed)
        except BaseException:
            # Whatever went wrong, the connection goes: ROLLBACK is attempted, then the pool forgets it (it is in
            # autocommit) and the next batch opens a new one.
            self._batch_conn = None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.rollback()
                conn.invalidate()
                conn.close()
            raise

    def _writer_for(self, loop: asyncio.AbstractEventLoop) -> LoopWriter[SqlTransaction] | ThreadWriter[SqlTransaction]:
        if not self._sqlite:
            if self._thread_writer is None:
                with self._writer_lock:
                    if self._thread_writer is None:
                        self._thread_writer = ThreadWriter(self._batch_transaction, locked=SqlTransaction.flush)
            return self._thread_writer
        writer = self._loop_writers.get(loop)
        if writer is None:
            with self._writer_lock:
                if self._checkpointer is None:
                    self._checkpointer = WalCheckpointer(self._readers.connect)
                writer = self._loop_writers.setdefault(
                    loop, LoopWriter(loop, self._open_batch, self._writer_mutex, self._exclusive))
        return writer

    def _open_batch(self) -> SqlBatch:
        """A SQLite batch (``LoopWriter``) on the connection the last batch committed on, kept for it (``_keep``):
        a pool checkout, its return and reset, and the PRAGMA cost three times BEGIN and COMMIT themselves, a batch.
        Batches of this process never overlap (the writer mutex is held from BEGIN to the end of COMMIT), so one
        connection is enough; a batch that fails closes it, and the next opens another."""
        with unavailable_on(*self._failures):
            conn, self._kept_batch_conn = self._kept_batch_conn, None
            if conn is None:
                conn = self.engine.connect()
                try:
                    conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                        "PRAGMA wal_autocheckpoint=0")  # the checkpointer's job (checkpointer.py), not a COMMIT's
                except BaseException:
                    conn.close()
                    raise
            try:
                began = conn.begin()
                return SqlBatch(conn, began, SqlTransaction(conn, self._audit_key), self._failures, self._keep)
            except BaseException:
                conn.invalidate()
                conn.close()
                raise

    def _keep(self, conn: Connection) -> None:
        """A batch's connection, committed: kept for the next batch (closed if the store closed meanwhile)."""
        with self._writer_lock:
            if not self._closed:
                self._kept_batch_conn = conn
                return
        conn.close()

    def audit_records(self, up_to: int | None = None) -> Iterator[AuditRecord]:
        last = 0
        while True:
            # Each page a read of its own on the reader (SQLite: a WAL snapshot, never the write lock, so a
            # running server's batches are not held); records up to the head never change, so pages agree.
            with self._read() as tx:
                rows = tx.audit_page(after=last, limit=20_000, up_to=up_to)
            if not rows:
                return
            yield from rows
            last = rows[-1].seq

    def audit_head(self) -> tuple[int, str]:
        with self._read() as tx:
            return tx.audit_head()

    def ping(self) -> None:
        with unavailable_on(SQLAlchemyError), self._reader.connect() as conn:  # a read: never the write lock
            conn.exec_driver_sql("SELECT 1")

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()  # its last flush needs the store
        if self._anchor is not None:
            self._anchor.close()  # the head at shutdown, after the spool's events
        with self._writer_lock:
            writers: list[LoopWriter[SqlTransaction] | ThreadWriter[SqlTransaction]] = list(self._loop_writers.values())
            if self._thread_writer is not None:
                writers.append(self._thread_writer)
            self._loop_writers, self._thread_writer = {}, None
            checkpointer, self._checkpointer = self._checkpointer, None
        for writer in writers:
            writer.close()
        with self._writer_lock:
            self._closed = True
            kept, self._kept_batch_conn = self._kept_batch_conn, None
        if kept is not None:
            kept.close()
        if self._batch_conn is not None:
            self._batch_conn.invalidate()  # in autocommit: never back to the pool
            self._batch_conn.close()
            self._batch_conn = None
        if checkpointer is not None:
            checkpointer.close()
        self._readers.close()
        self.engine.dispose()
        self._reader.dispose()
        if self._exclusive is not None:
            self._exclusive.close()
