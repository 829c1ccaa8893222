"""The storage interface. Domain services depend on this, never on a database library."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import date
from typing import Protocol, TypeVar

from ..domain.audit import AuditEvent, AuditRecord
from ..domain.cpis import Access, Alert, Notification, Plan, PlanKey
from ..domain.fgm import Indicator
from ..domain.patients import Patient

T = TypeVar("T")


class StoreUnavailable(Exception):
    """The store cannot be reached or failed; the request cannot be served."""


class Transaction(Protocol):
    """One atomic unit of work. Everything done through it commits together, or none of it does."""

    def savepoint(self) -> AbstractContextManager[None]:
        """Undo everything done inside the block (audit appends too) if it raises; the rest stands."""
        ...

    # Demographics
    def get_patient(self, nhs_number: str) -> Patient | None: ...
    def put_patient(self, patient: Patient) -> None: ...

    # FGM indicators
    def active_indicator(self, nhs_number: str) -> Indicator | None: ...
    def patient_and_active_indicator(self, nhs_number: str) -> tuple[Patient | None, Indicator | None]:
        """The child and its active indicator in one statement; no indicator when the patient is unknown."""
        ...

    def prefetch_patient_and_active_indicator(self, nhs_number: str) -> None:
        """Queue ``patient_and_active_indicator``'s read ahead (sent with the batch's first round trip)."""
        ...

    def get_indicator(self, indicator_id: str) -> Indicator | None: ...
    def indicator_history(self, nhs_number: str) -> list[Indicator]: ...
    def insert_indicator(self, indicator: Indicator) -> None:
        """Store a new active indicator; raise ``IndicatorAlreadySet`` if the child has one.

        The check is the store's own (a unique index on active indicators), so it holds under
        concurrent requests and across processes.
        """
        ...

    def save_removal(self, indicator: Indicator) -> bool:
        """Record a removal if the stored indicator is still active at ``version - 1``; False if not."""
        ...

    def indicators_to_expire(self, born_on_or_before: date) -> list[tuple[Indicator, Patient]]: ...

    # CP-IS plans
    def plans_for(self, nhs_number: str, *, lock: bool = False) -> list[Plan]:
        """Every plan held for the NHS number: all authorities, ended and withdrawn ones too.

        With ``lock`` the rows stay locked until the transaction ends, which serialises concurrent
        accesses to one child (PostgreSQL row locks; SQLite write transactions are serial anyway).
        """
        ...

    def plans_with_last_access(self, nhs_number: str, user_id: str) -> tuple[list[Plan], str | None]:
        """``plans_for(nhs_number, lock=True)`` and ``last_listed_access(nhs_number, user_id)`` at once (on
        PostgreSQL in one round trip): what an unscheduled access reads before it is recorded."""
        ...

    def prefetch_plans_with_last_access(self, nhs_number: str, user_id: str) -> None:
        """Queue ``plans_with_last_access``'s reads ahead (sent with the batch's first round trip; the store
        reads again if the transaction has written the child's rows meanwhile)."""
        ...

    def plan_for_update(self, key: PlanKey) -> Plan | None:
        """The plan with this key, locked until the transaction ends."""
        ...

    def plan_by_id(self, plan_id: str) -> Plan | None:
        """The plan with this id (a CareTeam's), whatever its state."""
        ...

    def insert_plan(self, plan: Plan) -> bool:
        """Store a new plan; False (and the transaction still usable) if its key is already taken,
        e.g. by a concurrent upload. The unique key is the database's own."""
        ...

    def update_plan(self, plan: Plan) -> bool:
        """Save a changed plan if the stored one is still at ``version - 1``; False if not."""
        ...

    # CP-IS access history, alerts and the notification queue
    def record_access(self, access: Access) -> None: ...
    def last_listed_access(self, nhs_number: str, user_id: str) -> str | None:
        """When this user's latest listed access to this child was recorded, if ever."""
        ...

    def access_history(self, nhs_number: str, limit: int) -> list[Access]:
        """The newest ``limit`` listed accesses, newest first."""
        ...

    def record_alert(self, alert: Alert) -> None: ...
    def alert_by_id(self, alert_id: str) -> tuple[Alert, list[str]] | None:
        """The alert with this id and the ODS codes of the authorities it was queued for."""
        ...

    def queue_notification(self, notification: Notification) -> None: ...
    def pending_notifications(self, authority_ods: str, limit: int) -> list[Notification]:
        """The authority's unacknowledged notifications, oldest first."""
        ...

    def count_pending(self, authority_ods: str) -> int: ...
    def acknowledge(self, authority_ods: str, event_ids: list[str], at: str) -> list[str]:
        """Mark the authority's pending notifications for these events as taken; returns the event ids
        that were pending (unknown, already acknowledged or other authorities' ids are ignored)."""
        ...

    # Web sessions
    def revoke_web_session(self, session_hash: str, until: int, now: int) -> None:
        """The web session with this hash is signed out, everywhere, until ``until`` (epoch seconds: when
        its absolute lifetime ends). Recording it twice is harmless. Sessions whose ``until`` is before
        ``now`` are forgotten at the same time (they have ended anyway)."""
        ...

    # Audit
    def append_audit(self, event: AuditEvent) -> AuditRecord: ...


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[Transaction]: ...

    def run(self, unit: Callable[[Transaction], T], prefetch: Callable[[Transaction], None] | None = None) -> T:
        """Do ``unit`` in a transaction, maybe shared with other callers' units (group commit), and return
        its result once committed. It must only work through the transaction: it may be run again alone
        if another unit of its batch fails. An exception it raises undoes all it did. ``prefetch``, when
        given, queues the unit's reads (``prefetch_*``) before any unit of the batch runs."""
        ...

    # Reads outside any write transaction (a consistent snapshot, no locks held).
    def read_patient(self, nhs_number: str) -> Patient | None: ...
    def read_active_indicator(self, nhs_number: str) -> Indicator | None: ...
    def read_indicator(self, indicator_id: str) -> Indicator | None: ...
    def read_history(self, nhs_number: str) -> list[Indicator]: ...
    def read_plans(self, nhs_number: str) -> list[Plan]: ...
    def read_accesses(self, nhs_number: str) -> list[Access]:
        """Every recorded access to the child, listed or not, oldest first."""
        ...

    def read_notifications(self, authority_ods: str) -> list[Notification]:
        """Every notification queued for the authority, acknowledged or not, oldest first."""
        ...

    def web_session_revoked(self, session_hash: str) -> bool:
        """Whether the web session with this hash was signed out (and not yet forgotten)."""
        ...

    def audit_records(self, up_to: int | None = None) -> Iterator[AuditRecord]:
        """The chain in order (only records up to sequence number ``up_to``, if given)."""
        ...
    def audit_head(self) -> tuple[int, str]: ...
    def spool_audit(self, event: AuditEvent) -> None:
        """Keep an audit event the store cannot take now (it is unavailable) on local disk, durably; it
        joins the chain once the store is back. Raises ``StoreUnavailable`` if the store has no spool."""
        ...

    def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the store answers."""
        ...

    def close(self) -> None: ...
