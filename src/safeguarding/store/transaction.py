"""A transaction of the SQL store (``SqlTransaction``: every read and write a unit of work makes, and the audit
chain's appends), and a group-commit batch's transaction (``SqlBatch``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..audit.chain import link_hash
from ..domain.audit import AuditEvent, AuditRecord
from ..domain.clock import iso_instant
from ..domain.cpis import (
    Access,
    Alert,
    Event,
    Notification,
    Plan,
    PlanKey,
)
from ..domain.errors import IndicatorAlreadySet
from ..domain.fgm import Indicator, IndicatorStatus
from ..domain.patients import Patient
from . import schema as t
from .failures import unavailable_on
from .interface import StoreUnavailable
from .rows import (
    _ACCESS_KIND,
    _ACTIVE_INDICATOR,
    _ALERT_KIND,
    _AUDIT_PAGE,
    _INDICATOR_BY_ID,
    _INDICATOR_FIELDS,
    _INSERT_AUDIT_EVENT,
    _INSERT_INDICATOR,
    _LAST_LISTED_ACCESS,
    _LAST_LISTED_ACCESSES,
    _LOCK_AUDIT_HEAD,
    _MOVE_AUDIT_HEAD,
    _PATIENT_AND_ACTIVE_INDICATOR,
    _PATIENT_BY_NUMBER,
    _PATIENT_FIELDS,
    _PATIENTS_AND_ACTIVE_INDICATORS,
    _PLAN_FIELDS,
    _PLANS_FOR,
    _PLANS_FOR_ALL_LOCKED,
    _PLANS_FOR_LOCKED,
    _QUEUE_NOTIFICATION,
    _RECORD_ACCESS,
    _RELEASE_SAVEPOINT,
    _ROLLBACK_TO_SAVEPOINT,
    _SAVE_REMOVAL,
    _SAVEPOINT,
    _access,
    _alert,
    _audit_record,
    _author_json,
    _columns,
    _flat_json,
    _indicator_row,
    _patient_row,
    _plan_row,
    _plan_rows_by_id,
    _plan_values,
)
from .statements import StatementSender
from .web_sessions import FORGET_ENDED_WEB_SESSIONS, REVOKE_WEB_SESSION


class SqlTransaction(StatementSender):
    def __init__(self, conn: Connection, audit_key: bytes, *, begin: bool = False) -> None:
        """``begin``: the connection is in autocommit (PostgreSQL) and this transaction sends its own BEGIN,
        with its first statement, and COMMIT, with its last (``flush``)."""
        super().__init__(conn, begin=begin)
        self._audit_key = audit_key
        self._head: tuple[int, str] | None = None  # the chain head as this transaction has moved it
        self._head_moved = False
        # Children whose rows this transaction wrote: a read of theirs queued ahead (``prefetch_*``) may predate
        # the write, so it is made again.
        self._touched: set[str] = set()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Roll back to here (writes and audit appends alike) if the block raises.

        On PostgreSQL the SAVEPOINT waits in the queue with the block's writes, and reaches the database only
        if something of the block does before it ends (a read, a write that must answer at once). A block
        nothing of which has been sent is undone by dropping its part of the queue, and kept by dropping just
        its SAVEPOINT: then neither SAVEPOINT nor RELEASE is ever sent (a unit of work's savepoint would
        otherwise be two of its three statements, for a search, and two of seven for a CP-IS access)."""
        head, moved = self._head, self._head_moved
        mark, flushes = len(self._queued or ()), self._flushes
        self._execute(_SAVEPOINT, {})
        try:
            yield
        except BaseException:
            self._head, self._head_moved = head, moved
            if self._queued is not None and self._flushes == flushes:
                del self._queued[mark:]  # nothing of the block has reached the database, nor its SAVEPOINT
                self._ahead = {name: at for name, at in self._ahead.items() if at < mark}
            else:
                self._execute(_ROLLBACK_TO_SAVEPOINT, {})
                self._execute(_RELEASE_SAVEPOINT, {})
            raise
        if self._queued is not None and self._flushes == flushes:
            del self._queued[mark]  # the block's SAVEPOINT, still waiting: its writes simply go on waiting
            self._ahead = {name: at - 1 if at > mark else at for name, at in self._ahead.items()}
        else:
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
        self._touched.add(patient.nhs_number)
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
        changed = self._sa(
            update(t.patients).where(t.patients.c.nhs_number == patient.nhs_number).values(values)
        ).rowcount
        if not changed:
            # PostgreSQL (READ COMMITTED): a concurrent transaction may insert the same new patient
            # between our UPDATE and INSERT. Insert under a savepoint and, if the primary key refuses
            # it, update the row that now exists, instead of failing the whole transaction (which
            # ``transaction()`` would report as StoreUnavailable). SQLite never races here: every
            # write transaction holds the database write lock from its start.
            try:
                with self._nested():
                    self._sa(insert(t.patients).values(values))
            except IntegrityError:
                self._sa(
                    update(t.patients).where(t.patients.c.nhs_number == patient.nhs_number).values(values)
                )

    # FGM indicators
    def active_indicator(self, nhs_number: str) -> Indicator | None:
        row = self._one(_ACTIVE_INDICATOR, {"nhs_number": nhs_number})
        return _indicator_row(row) if row else None

    def patient_and_active_indicator(self, nhs_number: str) -> tuple[Patient | None, Indicator | None]:
        rows = self._read_ahead(("child", nhs_number), nhs_number)
        if rows is None:
            rows = self._all(_PATIENT_AND_ACTIVE_INDICATOR, {"nhs_number": nhs_number})
        if not rows:
            return None, None
        row = rows[0]
        split = len(_PATIENT_FIELDS)
        return _patient_row(row[:split]), _indicator_row(row[split:]) if row[split] is not None else None

    def _read_ahead(self, name: Any, nhs_number: str) -> list[tuple[Any, ...]] | None:
        """The rows of a read of the child's queued ahead (``_ahead_of_time``, ``_gathered``); None if it was not
        queued, or if this transaction has written the child's rows since (the read may predate the write: read
        again)."""
        rows = self._fetch(name)
        return None if nhs_number in self._touched else rows

    def prefetch_patient_and_active_indicator(self, nhs_number: str) -> None:
        """PostgreSQL: queue ``patient_and_active_indicator``'s read, to go with the transaction's next round trip
        (a group-commit batch sends every unit's at once, as one statement, with BEGIN and the head's lock)."""
        self._gathered(("child", nhs_number), _PATIENTS_AND_ACTIVE_INDICATORS, (nhs_number,))

    def get_indicator(self, indicator_id: str) -> Indicator | None:
        row = self._one(_INDICATOR_BY_ID, {"id": indicator_id})
        return _indicator_row(row) if row else None

    def indicator_history(self, nhs_number: str) -> list[Indicator]:
        q = (
            select(*_columns(t.fgm_indicators, _INDICATOR_FIELDS))
            .where(t.fgm_indicators.c.nhs_number == nhs_number)
            .order_by(t.fgm_indicators.c.created_at, t.fgm_indicators.c.id)
        )
        return [_indicator_row(tuple(row)) for row in self._sa(q)]

    def insert_indicator(self, indicator: Indicator) -> None:
        self._touched.add(indicator.nhs_number)
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
                self._cursor(_INSERT_INDICATOR, values)  # at once: the unique index's refusal is the answer
        except self._conn.dialect.loaded_dbapi.IntegrityError as exc:
            raise IndicatorAlreadySet() from exc

    def save_removal(self, indicator: Indicator) -> bool:
        if indicator.removal is None:
            raise ValueError("save_removal needs a removed indicator")
        self._touched.add(indicator.nhs_number)
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
        return [(_indicator_row(tuple(row[:split])), _patient_row(tuple(row[split:]))) for row in self._sa(q)]

    # CP-IS plans
    def plans_for(self, nhs_number: str, *, lock: bool = False) -> list[Plan]:
        if lock:
            return _plan_rows_by_id(self._all(_PLANS_FOR_LOCKED, {"nhs_number": nhs_number}), self._queued is not None)
        return [_plan_row(row) for row in self._all(_PLANS_FOR, {"nhs_number": nhs_number})]

    def prefetch_plans_with_last_access(self, nhs_number: str, user_id: str) -> None:
        """PostgreSQL: queue ``plans_with_last_access``'s reads, to go with the transaction's next round trip
        (a group-commit batch sends every unit's at once, after the head's lock: one statement for every child's
        plans, one for every last access)."""
        self._gathered(("plans", nhs_number), _PLANS_FOR_ALL_LOCKED, (nhs_number,))
        self._gathered(("last", nhs_number, user_id), _LAST_LISTED_ACCESSES, (nhs_number, user_id))

    def plans_with_last_access(self, nhs_number: str, user_id: str) -> tuple[list[Plan], str | None]:
        plans = self._read_ahead(("plans", nhs_number), nhs_number)
        last = self._read_ahead(("last", nhs_number, user_id), nhs_number)
        if plans is None or last is None:  # not read ahead, or written since (a second access in one batch)
            plans, last = (cursor.fetchall() for cursor in self._cursors(
                (_PLANS_FOR_LOCKED, {"nhs_number": nhs_number}),
                (_LAST_LISTED_ACCESS, {"nhs_number": nhs_number, "user_id": user_id})))
        at = last[0][-1] if last else None  # the read's last column, alone or gathered
        # (``_queued`` is PostgreSQL's queue: there the rows come sorted, locked in id order)
        return _plan_rows_by_id(plans, self._queued is not None), str(at) if at is not None else None

    def plan_for_update(self, key: PlanKey) -> Plan | None:
        row = self._sa(
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
        row = self._sa(
            select(*_columns(t.cpis_plans, _PLAN_FIELDS)).where(t.cpis_plans.c.id == plan_id)).first()
        return _plan_row(tuple(row)) if row else None

    def insert_plan(self, plan: Plan) -> bool:
        self._touched.add(plan.key.nhs_number)
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
            with self._nested():
                self._sa(insert(t.cpis_plans).values(values))
        except IntegrityError:
            return False
        return True

    def update_plan(self, plan: Plan) -> bool:
        self._touched.add(plan.key.nhs_number)
        changed = self._sa(
            update(t.cpis_plans)
            .where(t.cpis_plans.c.id == plan.id, t.cpis_plans.c.version == plan.version - 1)
            .values(_plan_values(plan))
        ).rowcount
        return bool(changed == 1)

    # CP-IS access history, alerts and the notification queue
    def record_access(self, access: Access) -> None:
        self._touched.add(access.nhs_number)
        self._execute(_RECORD_ACCESS, {"id": access.id, "nhs_number": access.nhs_number, "recorded_at": access.at,
                                       "user_id": access.author.user_id, "author": _author_json(access.author),
                                       "listed": access.listed})

    def last_listed_access(self, nhs_number: str, user_id: str) -> str | None:
        row = self._one(_LAST_LISTED_ACCESS, {"nhs_number": nhs_number, "user_id": user_id})
        return str(row[0]) if row is not None and row[0] is not None else None

    def access_history(self, nhs_number: str, limit: int) -> list[Access]:
        c = t.cpis_accesses.c
        q = (select(t.cpis_accesses).where(c.nhs_number == nhs_number, c.listed)
             .order_by(c.recorded_at.desc(), c.id.desc()).limit(limit))
        return [_access(row) for row in self._sa(q)]

    def all_accesses(self, nhs_number: str) -> list[Access]:
        c = t.cpis_accesses.c
        q = select(t.cpis_accesses).where(c.nhs_number == nhs_number).order_by(c.recorded_at, c.id)
        return [_access(row) for row in self._sa(q)]

    def record_alert(self, alert: Alert) -> None:
        self._sa(insert(t.cpis_alerts).values(
            id=alert.id, nhs_number=alert.nhs_number, recorded_at=alert.at, author=_flat_json(alert.author),
            note=alert.note,
        ))

    def alert_by_id(self, alert_id: str) -> tuple[Alert, list[str]] | None:
        row = self._sa(select(t.cpis_alerts).where(t.cpis_alerts.c.id == alert_id)).first()
        if row is None:
            return None
        c = t.cpis_notifications.c
        recipients = self._sa(
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
        rows = self._sa(q).all()
        events: dict[str, Event] = {}
        access_ids = [r.event_id for r in rows if r.kind == _ACCESS_KIND]
        alert_ids = [r.event_id for r in rows if r.kind == _ALERT_KIND]
        if access_ids:
            found = self._sa(select(t.cpis_accesses).where(t.cpis_accesses.c.id.in_(access_ids)))
            events.update((row.id, _access(row)) for row in found)
        if alert_ids:
            found = self._sa(select(t.cpis_alerts).where(t.cpis_alerts.c.id.in_(alert_ids)))
            events.update((row.id, _alert(row)) for row in found)
        return [Notification(r.authority_ods, r.queued_at, events[r.event_id], r.acknowledged_at) for r in rows]

    def pending_notifications(self, authority_ods: str, limit: int) -> list[Notification]:
        c = t.cpis_notifications.c
        return self._notifications(and_(c.authority_ods == authority_ods, c.acknowledged_at.is_(None)), limit)

    def all_notifications(self, authority_ods: str) -> list[Notification]:
        return self._notifications(t.cpis_notifications.c.authority_ods == authority_ods)

    def count_pending(self, authority_ods: str) -> int:
        c = t.cpis_notifications.c
        count = self._sa(
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
        taken = [row.event_id for row in self._sa(
            select(c.event_id).where(pending).order_by(c.event_id).with_for_update())]
        if taken:
            self._sa(update(t.cpis_notifications)
                               .where(c.authority_ods == authority_ods, c.event_id.in_(taken),
                                      c.acknowledged_at.is_(None))
                               .values(acknowledged_at=at))
        return taken

    # Web sessions
    def revoke_web_session(self, session_hash: str, until: int, now: int) -> None:
        self._execute(REVOKE_WEB_SESSION, {"session_hash": session_hash, "until": until})
        self._execute(FORGET_ENDED_WEB_SESSIONS, {"now": now})

    # Audit
    def audit_page(self, after: int, limit: int, up_to: int | None = None) -> list[AuditRecord]:
        rows = self._all(_AUDIT_PAGE, {"after": after, "up_to": up_to if up_to is not None else 2**62, "limit": limit})
        return [_audit_record(row) for row in rows]

    def audit_head(self) -> tuple[int, str]:
        if self._head is not None:
            return self._head
        row = self._sa(select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == 1)).one()
        return int(row.seq), str(row.hash)

    def lock_audit_head_ahead(self) -> None:
        """PostgreSQL: queue the head's lock to go first with the transaction's next round trip (a batch's
        first read, or its first append): taken before any other row of the batch is locked."""
        self._ahead_of_time("head", _LOCK_AUDIT_HEAD, {})

    def lock_audit_head(self) -> tuple[int, str]:
        """Read the chain head, locking it (PostgreSQL) until this transaction ends."""
        rows = self._fetch("head")
        row = self._one(_LOCK_AUDIT_HEAD, {}) if rows is None else rows[0] if rows else None
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
        return AuditRecord(seq, event, prev_hash, digest)  # by position (seq, event, prev_hash, hash): every request


class SqlBatch:
    """A transaction opened for ``LoopWriter``: statements on the loop's thread, COMMIT in another. ``keep``: given
    the connection once committed, for the next batch (without it, the connection is closed)."""

    def __init__(self, conn: Connection, trans: Any, tx: SqlTransaction,
                 failures: tuple[type[Exception], ...], keep: Callable[[Connection], None] | None = None) -> None:
        self._conn, self._trans, self.tx, self._failures, self._keep = conn, trans, tx, failures, keep

    def commit(self) -> None:
        try:
            with unavailable_on(*self._failures):
                self.tx.finish()
                self._trans.commit()
        except BaseException:
            # SQLite keeps the transaction open when COMMIT fails (a deferred constraint, a full disk): this
            # connection must never go back to the pool holding it, and the write lock.
            self._conn.invalidate()
            self._conn.close()
            raise
        if self._keep is not None:
            self._keep(self._conn)
        else:
            self._conn.close()

    def rollback(self) -> None:
        try:
            with unavailable_on(*self._failures):
                self._trans.rollback()
        except StoreUnavailable:
            self._conn.invalidate()  # nothing was committed; the units are told by their own errors
        finally:
            self._conn.close()
