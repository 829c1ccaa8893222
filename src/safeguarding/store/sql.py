"""The SQL store: one implementation for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` and takes the write lock at the start of every
transaction (``BEGIN IMMEDIATE``), so a transaction never fails half-way on a lock upgrade.
PostgreSQL runs at READ COMMITTED; the correctness-critical steps rely on row locks and unique
indexes, never on reads made earlier in the transaction.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, and_, create_engine, event, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from .. import inline
from ..audit.chain import link_hash
from ..audit.checkpoints import Checkpointer
from ..audit.spool import AuditSpool
from ..domain.audit import AuditEvent, AuditRecord
from ..domain.clock import iso_instant
from ..domain.cpis import (
    Access,
    Alert,
    Author,
    AuthorityContact,
    Event,
    Notification,
    Plan,
    PlanKey,
    PlanType,
    Provenance,
)
from ..domain.errors import IndicatorAlreadySet
from ..domain.fgm import Actor, Indicator, IndicatorStatus, Removal, RemovalReason
from ..domain.patients import Gender, Patient, SecurityLabel
from ..fileutil import private_file
from ..metrics import STORE_ERRORS
from . import schema as t
from .checkpointer import WalCheckpointer
from .failures import unavailable_on
from .interface import StoreUnavailable
from .writer import LoopWriter, ThreadWriter
from .writer_lock import WriterLock

T = TypeVar("T")

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
        return create_engine(parsed, pool_size=10, max_overflow=10, pool_pre_ping=True)
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


def _flat_json(record: Actor | Author) -> str:
    """A flat record of plain values as JSON, its unset fields left out (``__dict__``: no deep copy, as
    ``asdict`` makes, for fields that hold no objects)."""
    return orjson.dumps({k: v for k, v in record.__dict__.items() if v is not None}).decode()


def _actor(raw: str | None) -> Actor:
    return Actor(**orjson.loads(raw)) if raw else Actor()


def _plan_values(plan: Plan) -> dict[str, Any]:
    return {
        "start_date": plan.start,
        "end_date": plan.end,
        "authority_name": plan.contact.name,
        "office_phone": plan.contact.office_phone,
        "emergency_phone": plan.contact.emergency_phone,
        "withdrawn_at": plan.withdrawn_at,
        "version": plan.version,
        "changed_at": plan.changed.at,
        "changed_by": plan.changed.by,
        "request_id": plan.changed.request_id,
    }


def _access(row: Any) -> Access:
    return Access(id=row.id, nhs_number=row.nhs_number, at=row.recorded_at, author=Author(**orjson.loads(row.author)),
                  listed=row.listed)


def _alert(row: Any) -> Alert:
    return Alert(id=row.id, nhs_number=row.nhs_number, at=row.recorded_at, author=Author(**orjson.loads(row.author)),
                 note=row.note)


_ACCESS_KIND, _ALERT_KIND = "access", "missed-appointment"


def _audit_record(row: tuple[Any, ...]) -> AuditRecord:
    """A row of ``_AUDIT_PAGE`` (seq, prev_hash, hash, then the event's fields in order)."""
    return AuditRecord(seq=row[0], event=AuditEvent(*row[3:]), prev_hash=row[1], hash=row[2])


class _Sql:
    """A statement on every request's path, as fixed SQL run straight on the driver's connection.

    Building and compiling SQLAlchemy expressions was most of a request's CPU, and even a prebuilt
    statement costs tens of microseconds in SQLAlchemy's execution layer (docs/performance.md). Written
    with ``:name`` parameters (sqlite3's style); PostgreSQL's ``%(name)s`` form is derived once.
    """

    def __init__(self, sqlite: str, postgresql_suffix: str = "", *, positional: bool = False) -> None:
        # ``positional``: bound from a tuple in the order the names appear (cheaper for wide rows).
        self.sqlite = re.sub(r":\w+", "?", sqlite) if positional else sqlite
        self.postgresql = re.sub(r":(\w+)", "%s" if positional else r"%(\1)s", sqlite) + postgresql_suffix

    def text(self, dialect: str) -> str:
        return self.postgresql if dialect == "postgresql" else self.sqlite


# The columns each row converter below reads, in its order: the fixed SQL and SQLAlchemy selects alike.
_PATIENT_FIELDS = ("nhs_number", "verified", "birth_date", "gender", "security", "gp_ods_code", "deceased",
                   "superseded_by")
_INDICATOR_FIELDS = ("id", "nhs_number", "assessment_date", "status", "version", "created_at", "created_by",
                     "removed_at", "removed_by", "removal_reason")
_PLAN_FIELDS = ("id", "authority_ods", "nhs_number", "plan_type", "start_date", "end_date", "authority_name",
                "office_phone", "emergency_phone", "withdrawn_at", "version", "created_at", "changed_at",
                "changed_by", "request_id")
_PATIENT_COLUMNS, _INDICATOR_COLUMNS, _PLAN_COLUMNS = (
    ", ".join(fields) for fields in (_PATIENT_FIELDS, _INDICATOR_FIELDS, _PLAN_FIELDS))
# Fixed text from the constant column lists above (S608: nothing of a request's is formatted in).
_PATIENT_BY_NUMBER = _Sql(f"SELECT {_PATIENT_COLUMNS} FROM patients WHERE nhs_number = :nhs_number")  # noqa: S608
_ACTIVE_INDICATOR = _Sql(f"SELECT {_INDICATOR_COLUMNS} FROM fgm_indicators "  # noqa: S608
                         "WHERE nhs_number = :nhs_number AND status = 'active'")
_INDICATOR_BY_ID = _Sql(f"SELECT {_INDICATOR_COLUMNS} FROM fgm_indicators WHERE id = :id")  # noqa: S608
_LOCK_AUDIT_HEAD = _Sql("SELECT seq, hash FROM audit_head WHERE id = 1", " FOR UPDATE")
_AUDIT_COLUMNS = ("seq", "prev_hash", "hash", *AuditEvent.__dataclass_fields__)
_INSERT_AUDIT_EVENT = _Sql(f"INSERT INTO audit_events ({', '.join(_AUDIT_COLUMNS)}) "  # noqa: S608
                           f"VALUES ({', '.join(':' + c for c in _AUDIT_COLUMNS)})", positional=True)
_INSERT_INDICATOR = _Sql("INSERT INTO fgm_indicators (id, nhs_number, assessment_date, status, version, created_at, "
                         "created_by) VALUES (:id, :nhs_number, :assessment_date, :status, :version, :created_at, "
                         ":created_by)")
_SAVE_REMOVAL = _Sql("UPDATE fgm_indicators SET status = :status, version = :version, removed_at = :removed_at, "
                     "removed_by = :removed_by, removal_reason = :removal_reason "
                     "WHERE id = :id AND status = 'active' AND version = :previous")
_SAVEPOINT = _Sql("SAVEPOINT sg_savepoint")  # nests: ROLLBACK TO and RELEASE take the innermost of the name
_ROLLBACK_TO_SAVEPOINT = _Sql("ROLLBACK TO SAVEPOINT sg_savepoint")
_RELEASE_SAVEPOINT = _Sql("RELEASE SAVEPOINT sg_savepoint")
_PLANS_FOR = _Sql(f"SELECT {_PLAN_COLUMNS} FROM cpis_plans WHERE nhs_number = :nhs_number ORDER BY id")  # noqa: S608
_PLANS_FOR_LOCKED = _Sql(_PLANS_FOR.sqlite, " FOR UPDATE")
_LAST_LISTED_ACCESS = _Sql("SELECT MAX(recorded_at) FROM cpis_accesses "
                           "WHERE nhs_number = :nhs_number AND user_id = :user_id AND listed")
_RECORD_ACCESS = _Sql("INSERT INTO cpis_accesses (id, nhs_number, recorded_at, user_id, author, listed) "
                      "VALUES (:id, :nhs_number, :recorded_at, :user_id, :author, :listed)")
_QUEUE_NOTIFICATION = _Sql("INSERT INTO cpis_notifications (authority_ods, event_id, kind, queued_at, acknowledged_at) "
                           "VALUES (:authority_ods, :event_id, :kind, :queued_at, :acknowledged_at)")
_AUDIT_PAGE = _Sql(f"SELECT {', '.join(_AUDIT_COLUMNS)} FROM audit_events "  # noqa: S608
                   "WHERE seq > :after AND seq <= :up_to ORDER BY seq LIMIT :limit")
_MOVE_AUDIT_HEAD = _Sql("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1")


def _columns(table: Any, fields: tuple[str, ...]) -> list[Any]:
    return [table.c[name] for name in fields]


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _patient_row(row: tuple[Any, ...]) -> Patient:
    number, verified, birth, gender, security, gp, deceased, superseded = row
    return Patient(nhs_number=number, verified=bool(verified), birth_date=_date(birth),
                   gender=Gender(gender) if gender else None, security=SecurityLabel(security), gp_ods_code=gp,
                   deceased=bool(deceased), superseded_by=superseded)


def _indicator_row(row: tuple[Any, ...]) -> Indicator:
    ident, number, assessed, status, version, created_at, created_by, removed_at, removed_by, reason = row
    removal = Removal(removed_at, _actor(removed_by), RemovalReason(reason)) if removed_at is not None else None
    return Indicator(id=ident, nhs_number=number, assessment_date=_date(assessed) or date.min,
                     status=IndicatorStatus(status), created_at=created_at, created_by=_actor(created_by),
                     removal=removal, version=version)


def _plan_row(row: tuple[Any, ...]) -> Plan:
    (ident, authority, number, plan_type, start, end, name, office, emergency, withdrawn_at, version, created_at,
     changed_at, changed_by, request_id) = row
    return Plan(id=ident, key=PlanKey(authority, number, PlanType(plan_type)), start=_date(start) or date.min,
                end=_date(end), contact=AuthorityContact(name, office, emergency), created_at=created_at,
                changed=Provenance(changed_at, changed_by, request_id), withdrawn_at=withdrawn_at, version=version)


class _Readers:
    """Driver connections for the hot reads outside a transaction (autocommit: each SELECT sees the
    latest committed state), kept for reuse. Cheaper than a pooled SQLAlchemy connection, whose
    checkout, BEGIN and reset-on-return cost more than the read itself."""

    def __init__(self, engine: Engine, keep: int = 8) -> None:
        self._engine, self._keep = engine, keep
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._errors: tuple[type[Exception], ...] = (engine.dialect.loaded_dbapi.Error,)

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

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close_quietly(conn)


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


class SqlTransaction:
    def __init__(self, conn: Connection, audit_key: bytes) -> None:
        self._conn = conn
        self._audit_key = audit_key
        self._dialect = conn.dialect.name
        self._driver: Any = None
        self._head: tuple[int, str] | None = None  # the chain head as this transaction has moved it
        self._head_moved = False

    def _cursor(self, statement: _Sql, params: dict[str, Any] | tuple[Any, ...]) -> Any:
        """Run a hot-path statement on the driver's connection, inside this transaction."""
        if self._driver is None:
            self._driver = self._conn.connection.driver_connection
        return self._driver.execute(statement.text(self._dialect), params)

    def _one(self, statement: _Sql, params: dict[str, Any]) -> tuple[Any, ...] | None:
        return self._cursor(statement, params).fetchone()  # type: ignore[no-any-return]

    def _all(self, statement: _Sql, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self._cursor(statement, params).fetchall()  # type: ignore[no-any-return]

    def _execute(self, statement: _Sql, params: dict[str, Any] | tuple[Any, ...]) -> None:
        self._cursor(statement, params)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Roll back to here (writes and audit appends alike) if the block raises."""
        head, moved = self._head, self._head_moved
        self._execute(_SAVEPOINT, {})
        try:
            yield
        except BaseException:
            self._head, self._head_moved = head, moved
            self._execute(_ROLLBACK_TO_SAVEPOINT, {})
            self._execute(_RELEASE_SAVEPOINT, {})
            raise
        self._execute(_RELEASE_SAVEPOINT, {})

    def finish(self) -> None:
        """Before commit: write the chain head once for every event appended in this transaction."""
        if self._head_moved and self._head is not None:
            self._execute(_MOVE_AUDIT_HEAD, {"seq": self._head[0], "hash": self._head[1]})
            self._head_moved = False

    # Demographics
    def get_patient(self, nhs_number: str) -> Patient | None:
        row = self._one(_PATIENT_BY_NUMBER, {"nhs_number": nhs_number})
        return _patient_row(row) if row else None

    def put_patient(self, patient: Patient) -> None:
        values = {
            "nhs_number": patient.nhs_number,
            "verified": patient.verified,
            "birth_date": patient.birth_date,
            "gender": patient.gender.value if patient.gender else None,
            "security": patient.security.value,
            "gp_ods_code": patient.gp_ods_code,
            "deceased": patient.deceased,
            "superseded_by": patient.superseded_by,
            "updated_at": iso_instant(datetime.now(timezone.utc)),
        }
        changed = self._conn.execute(
            update(t.patients).where(t.patients.c.nhs_number == patient.nhs_number).values(values)
        ).rowcount
        if not changed:
            # PostgreSQL (READ COMMITTED): a concurrent transaction may insert the same new patient
            # between our UPDATE and INSERT. Insert under a savepoint and, if the primary key refuses
            # it, update the row that now exists, instead of failing the whole transaction (which
            # ``transaction()`` would report as StoreUnavailable). SQLite never races here: every
            # write transaction holds the database write lock from its start.
            try:
                with self._conn.begin_nested():
                    self._conn.execute(insert(t.patients).values(values))
            except IntegrityError:
                self._conn.execute(
                    update(t.patients).where(t.patients.c.nhs_number == patient.nhs_number).values(values)
                )

    # FGM indicators
    def active_indicator(self, nhs_number: str) -> Indicator | None:
        row = self._one(_ACTIVE_INDICATOR, {"nhs_number": nhs_number})
        return _indicator_row(row) if row else None

    def get_indicator(self, indicator_id: str) -> Indicator | None:
        row = self._one(_INDICATOR_BY_ID, {"id": indicator_id})
        return _indicator_row(row) if row else None

    def indicator_history(self, nhs_number: str) -> list[Indicator]:
        q = (
            select(*_columns(t.fgm_indicators, _INDICATOR_FIELDS))
            .where(t.fgm_indicators.c.nhs_number == nhs_number)
            .order_by(t.fgm_indicators.c.created_at, t.fgm_indicators.c.id)
        )
        return [_indicator_row(tuple(row)) for row in self._conn.execute(q)]

    def insert_indicator(self, indicator: Indicator) -> None:
        values = {
            "id": indicator.id,
            "nhs_number": indicator.nhs_number,
            "assessment_date": indicator.assessment_date.isoformat(),
            "status": indicator.status.value,
            "version": indicator.version,
            "created_at": indicator.created_at,
            "created_by": _flat_json(indicator.created_by),
        }
        # A savepoint keeps the transaction usable when the unique index refuses the row.
        try:
            with self.savepoint():
                self._execute(_INSERT_INDICATOR, values)
        except self._conn.dialect.loaded_dbapi.IntegrityError as exc:
            raise IndicatorAlreadySet() from exc

    def save_removal(self, indicator: Indicator) -> bool:
        if indicator.removal is None:
            raise ValueError("save_removal needs a removed indicator")
        changed = self._cursor(_SAVE_REMOVAL, {
            "id": indicator.id, "previous": indicator.version - 1, "status": indicator.status.value,
            "version": indicator.version, "removed_at": indicator.removal.at,
            "removed_by": _flat_json(indicator.removal.by), "removal_reason": indicator.removal.reason.value,
        }).rowcount
        return bool(changed == 1)

    def indicators_to_expire(self, born_on_or_before: date) -> list[tuple[Indicator, Patient]]:
        q = (
            select(*_columns(t.fgm_indicators, _INDICATOR_FIELDS), *_columns(t.patients, _PATIENT_FIELDS))
            .join(t.patients, t.patients.c.nhs_number == t.fgm_indicators.c.nhs_number)
            .where(
                t.fgm_indicators.c.status == IndicatorStatus.ACTIVE.value,
                t.patients.c.birth_date <= born_on_or_before,
            )
        )
        split = len(_INDICATOR_FIELDS)
        return [(_indicator_row(tuple(row[:split])), _patient_row(tuple(row[split:]))) for row in self._conn.execute(q)]

    # CP-IS plans
    def plans_for(self, nhs_number: str, *, lock: bool = False) -> list[Plan]:
        rows = self._all(_PLANS_FOR_LOCKED if lock else _PLANS_FOR, {"nhs_number": nhs_number})
        return [_plan_row(row) for row in rows]

    def plan_for_update(self, key: PlanKey) -> Plan | None:
        row = self._conn.execute(
            select(*_columns(t.cpis_plans, _PLAN_FIELDS))
            .where(
                t.cpis_plans.c.authority_ods == key.authority_ods,
                t.cpis_plans.c.nhs_number == key.nhs_number,
                t.cpis_plans.c.plan_type == key.plan_type.value,
            )
            .with_for_update()
        ).first()
        return _plan_row(tuple(row)) if row else None

    def plan_by_id(self, plan_id: str) -> Plan | None:
        row = self._conn.execute(
            select(*_columns(t.cpis_plans, _PLAN_FIELDS)).where(t.cpis_plans.c.id == plan_id)).first()
        return _plan_row(tuple(row)) if row else None

    def insert_plan(self, plan: Plan) -> bool:
        values = {
            "id": plan.id,
            "authority_ods": plan.key.authority_ods,
            "nhs_number": plan.key.nhs_number,
            "plan_type": plan.key.plan_type.value,
            "created_at": plan.created_at,
            **_plan_values(plan),
        }
        # A savepoint keeps the transaction usable when the unique key refuses the row.
        try:
            with self._conn.begin_nested():
                self._conn.execute(insert(t.cpis_plans).values(values))
        except IntegrityError:
            return False
        return True

    def update_plan(self, plan: Plan) -> bool:
        changed = self._conn.execute(
            update(t.cpis_plans)
            .where(t.cpis_plans.c.id == plan.id, t.cpis_plans.c.version == plan.version - 1)
            .values(_plan_values(plan))
        ).rowcount
        return bool(changed == 1)

    # CP-IS access history, alerts and the notification queue
    def record_access(self, access: Access) -> None:
        self._execute(_RECORD_ACCESS, {"id": access.id, "nhs_number": access.nhs_number, "recorded_at": access.at,
                                       "user_id": access.author.user_id, "author": _flat_json(access.author),
                                       "listed": access.listed})

    def last_listed_access(self, nhs_number: str, user_id: str) -> str | None:
        row = self._one(_LAST_LISTED_ACCESS, {"nhs_number": nhs_number, "user_id": user_id})
        return str(row[0]) if row is not None and row[0] is not None else None

    def access_history(self, nhs_number: str, limit: int) -> list[Access]:
        c = t.cpis_accesses.c
        q = (select(t.cpis_accesses).where(c.nhs_number == nhs_number, c.listed)
             .order_by(c.recorded_at.desc(), c.id.desc()).limit(limit))
        return [_access(row) for row in self._conn.execute(q)]

    def all_accesses(self, nhs_number: str) -> list[Access]:
        c = t.cpis_accesses.c
        q = select(t.cpis_accesses).where(c.nhs_number == nhs_number).order_by(c.recorded_at, c.id)
        return [_access(row) for row in self._conn.execute(q)]

    def record_alert(self, alert: Alert) -> None:
        self._conn.execute(insert(t.cpis_alerts).values(
            id=alert.id, nhs_number=alert.nhs_number, recorded_at=alert.at, author=_flat_json(alert.author),
            note=alert.note,
        ))

    def alert_by_id(self, alert_id: str) -> tuple[Alert, list[str]] | None:
        row = self._conn.execute(select(t.cpis_alerts).where(t.cpis_alerts.c.id == alert_id)).first()
        if row is None:
            return None
        c = t.cpis_notifications.c
        recipients = self._conn.execute(
            select(c.authority_ods).where(c.event_id == alert_id, c.kind == _ALERT_KIND).order_by(c.authority_ods))
        return _alert(row), [ods for (ods,) in recipients]

    def queue_notification(self, notification: Notification) -> None:
        self._execute(_QUEUE_NOTIFICATION, {
            "authority_ods": notification.authority_ods, "event_id": notification.event_id,
            "kind": _ACCESS_KIND if isinstance(notification.event, Access) else _ALERT_KIND,
            "queued_at": notification.queued_at, "acknowledged_at": notification.acknowledged_at,
        })

    def _notifications(self, where: Any, limit: int | None = None) -> list[Notification]:
        c = t.cpis_notifications.c
        q = select(t.cpis_notifications).where(where).order_by(c.queued_at, c.event_id)
        if limit is not None:
            q = q.limit(limit)
        rows = self._conn.execute(q).all()
        events: dict[str, Event] = {}
        access_ids = [r.event_id for r in rows if r.kind == _ACCESS_KIND]
        alert_ids = [r.event_id for r in rows if r.kind == _ALERT_KIND]
        if access_ids:
            found = self._conn.execute(select(t.cpis_accesses).where(t.cpis_accesses.c.id.in_(access_ids)))
            events.update((row.id, _access(row)) for row in found)
        if alert_ids:
            found = self._conn.execute(select(t.cpis_alerts).where(t.cpis_alerts.c.id.in_(alert_ids)))
            events.update((row.id, _alert(row)) for row in found)
        return [Notification(r.authority_ods, r.queued_at, events[r.event_id], r.acknowledged_at) for r in rows]

    def pending_notifications(self, authority_ods: str, limit: int) -> list[Notification]:
        c = t.cpis_notifications.c
        return self._notifications(and_(c.authority_ods == authority_ods, c.acknowledged_at.is_(None)), limit)

    def all_notifications(self, authority_ods: str) -> list[Notification]:
        return self._notifications(t.cpis_notifications.c.authority_ods == authority_ods)

    def count_pending(self, authority_ods: str) -> int:
        c = t.cpis_notifications.c
        count = self._conn.execute(
            select(func.count()).select_from(t.cpis_notifications)
            .where(c.authority_ods == authority_ods, c.acknowledged_at.is_(None))
        ).scalar()
        return int(count or 0)

    def acknowledge(self, authority_ods: str, event_ids: list[str], at: str) -> list[str]:
        if not event_ids:
            return []
        c = t.cpis_notifications.c
        pending = and_(c.authority_ods == authority_ods, c.event_id.in_(event_ids), c.acknowledged_at.is_(None))
        # Lock, then update exactly those rows: the ids returned are the ones this call acknowledged.
        taken = [row.event_id for row in self._conn.execute(
            select(c.event_id).where(pending).order_by(c.event_id).with_for_update())]
        if taken:
            self._conn.execute(update(t.cpis_notifications)
                               .where(c.authority_ods == authority_ods, c.event_id.in_(taken),
                                      c.acknowledged_at.is_(None))
                               .values(acknowledged_at=at))
        return taken

    # Audit
    def audit_page(self, after: int, limit: int, up_to: int | None = None) -> list[AuditRecord]:
        rows = self._all(_AUDIT_PAGE, {"after": after, "up_to": up_to if up_to is not None else 2**62, "limit": limit})
        return [_audit_record(row) for row in rows]

    def audit_head(self) -> tuple[int, str]:
        if self._head is not None:
            return self._head
        row = self._conn.execute(select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == 1)).one()
        return int(row.seq), str(row.hash)

    def lock_audit_head(self) -> tuple[int, str]:
        """Read the chain head, locking it (PostgreSQL) until this transaction ends."""
        row = self._one(_LOCK_AUDIT_HEAD, {})
        if row is None:
            raise StoreUnavailable("audit_head has no row: run `safeguarding db upgrade`")
        self._head = (int(row[0]), str(row[1]))
        return self._head

    def append_audit(self, event: AuditEvent) -> AuditRecord:
        # The head is read (and on PostgreSQL locked) by the transaction's first append; later appends
        # follow on from it in memory, and ``finish`` writes it once before the commit.
        prev_seq, prev_hash = self._head if self._head is not None else self.lock_audit_head()
        seq = prev_seq + 1
        fields = event.fields()
        digest = link_hash(self._audit_key, seq, prev_hash, fields)
        self._execute(_INSERT_AUDIT_EVENT, (seq, prev_hash, digest, *event.values()))  # _AUDIT_COLUMNS' order
        self._head, self._head_moved = (seq, digest), True
        return AuditRecord(seq=seq, event=event, prev_hash=prev_hash, hash=digest)


class _SqlBatch:
    """A transaction opened for ``LoopWriter``: statements on the loop's thread, COMMIT in another."""

    def __init__(self, conn: Connection, trans: Any, tx: SqlTransaction,
                 failures: tuple[type[Exception], ...]) -> None:
        self._conn, self._trans, self.tx, self._failures = conn, trans, tx, failures

    def commit(self) -> None:
        try:
            with unavailable_on(*self._failures):
                self.tx.finish()
                self._trans.commit()
        except BaseException:
            # SQLite keeps the transaction open when COMMIT fails (a deferred constraint, a full disk): this
            # connection must never go back to the pool holding it, and the write lock.
            self._conn.invalidate()
            raise
        finally:
            self._conn.close()

    def rollback(self) -> None:
        try:
            with unavailable_on(*self._failures):
                self._trans.rollback()
        except StoreUnavailable:
            self._conn.invalidate()  # nothing was committed; the units are told by their own errors
        finally:
            self._conn.close()


class SqlStore:
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
        self._sqlite = engine.dialect.name == "sqlite"
        self._loop_writers: dict[asyncio.AbstractEventLoop, LoopWriter[SqlTransaction]] = {}
        self._thread_writer: ThreadWriter[SqlTransaction] | None = None
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

    def read_patient(self, nhs_number: str) -> Patient | None:
        row = self._readers.one(_PATIENT_BY_NUMBER, {"nhs_number": nhs_number})
        return _patient_row(row) if row else None

    def read_indicator(self, indicator_id: str) -> Indicator | None:
        row = self._readers.one(_INDICATOR_BY_ID, {"id": indicator_id})
        return _indicator_row(row) if row else None

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

    def run(self, unit: Callable[[SqlTransaction], T]) -> T:
        """``unit`` in a transaction, committed (durably) before this returns. From a request running
        inline on the event loop the transaction is shared with other requests' units (group commit,
        ``writer.py``); ``unit`` may then be run twice (the second time alone, after another unit of its
        batch failed), so it must do nothing but work with the transaction. Elsewhere it gets its own."""
        loop = inline.running_loop()
        if loop is None:
            with self.transaction() as tx:
                return unit(tx)
        return self._writer_for(loop).run(unit)

    @contextmanager
    def _batch_transaction(self) -> Iterator[SqlTransaction]:
        # A batch locks the rows of many requests (CP-IS plans, indicators) and the chain head. Taken first,
        # the head orders the batches of every process, so two can never hold rows the other waits for.
        with self.transaction() as tx:
            tx.lock_audit_head()
            yield tx

    def _writer_for(self, loop: asyncio.AbstractEventLoop) -> LoopWriter[SqlTransaction] | ThreadWriter[SqlTransaction]:
        if not self._sqlite:
            if self._thread_writer is None:
                with self._writer_lock:
                    if self._thread_writer is None:
                        self._thread_writer = ThreadWriter(self._batch_transaction)
            return self._thread_writer
        writer = self._loop_writers.get(loop)
        if writer is None:
            with self._writer_lock:
                if self._checkpointer is None:
                    self._checkpointer = WalCheckpointer(self._readers.connect)
                writer = self._loop_writers.setdefault(
                    loop, LoopWriter(loop, self._open_batch, self._writer_mutex, self._exclusive))
        return writer

    def _open_batch(self) -> _SqlBatch:
        with unavailable_on(*self._failures):
            conn = self.engine.connect()
            try:
                began = conn.begin()
                conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                    "PRAGMA wal_autocheckpoint=0")  # the checkpointer's job (checkpointer.py), not a COMMIT's
                return _SqlBatch(conn, began, SqlTransaction(conn, self._audit_key), self._failures)
            except BaseException:
                conn.close()
                raise

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
        if checkpointer is not None:
            checkpointer.close()
        self._readers.close()
        self.engine.dispose()
        self._reader.dispose()
        if self._exclusive is not None:
            self._exclusive.close()
