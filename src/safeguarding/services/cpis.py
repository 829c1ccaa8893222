"""The CP-IS service: uploads, clinician queries, the access history, alerts and the notification feed.

Each request is one audited transaction (``Auditor.run``): recording an access, queuing its
notifications and the audit event commit together, or none of them does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from ..domain import cpis
from ..domain import nhs_number as nhs
from ..domain.caller import System, User
from ..domain.clock import Clock, iso_instant, uk_today
from ..domain.cpis import (
    Access,
    Alert,
    Applied,
    Author,
    Change,
    FileCode,
    Notification,
    Plan,
    PlanKey,
    PlanRecord,
    Provenance,
    RecordCode,
)
from ..domain.errors import AlertNotFound, DomainError, InvalidNhsNumber, PlanNotFound
from ..domain.ids import uuid4_text
from ..domain.patients import Demographics, Patient
from ..per_object import PerObject
from ..store.interface import Store, Transaction
from .auditing import Auditor
from .context import Outcome, RequestContext

FEED_LIMIT = 100
_AUTHORS_KEPT = 1024


@dataclass(frozen=True)
class RecordResult:
    """What became of one uploaded record: applied, or refused by a rule."""

    applied: Applied | None = None
    error: DomainError | None = None

    @property
    def code(self) -> RecordCode:
        return cpis.record_code(self.error)


@dataclass(frozen=True)
class UploadResult:
    results: list[RecordResult]
    file_code: FileCode


@dataclass(frozen=True)
class Feed:
    pending: list[Notification]
    total: int


class CpisService:
    def __init__(self, store: Store, demographics: Demographics, clock: Clock, auditor: Auditor) -> None:
        self._store = store
        self._demographics = demographics
        self._clock = clock
        self._auditor = auditor
        # The Author recorded for a User, made once for each (a verified token's User is one object, kept with it).
        self._author: PerObject[User, Author] = PerObject(Author.of, _AUTHORS_KEPT)

    def today(self) -> date:
        """The calendar date in England by this service's clock (plans are active by it)."""
        return uk_today(self._clock)

    # Local authority upload ------------------------------------------------------------------------

    def upload(self, ctx: RequestContext, uploader: System, records: Sequence[PlanRecord],
               refused: int = 0) -> UploadResult:
        """Apply each record as an upsert keyed by (uploader, NHS number, plan type).

        A record that breaks a rule is refused alone; the others apply. ``refused`` counts entries
        the adapter already refused (malformed), so the file code covers the whole upload.
        """
        if len(records) == 1 and refused == 0:
            ctx.nhs_number = records[0].nhs_number if nhs.is_valid(records[0].nhs_number) else None
        today = self.today()

        def prepare() -> list[DomainError | None]:
            checked: list[DomainError | None] = []
            for record in records:
                try:
                    cpis.check_record(record, uploader.ods_code, self._patient(record.nhs_number), today)
                    checked.append(None)
                except DomainError as error:
                    checked.append(error)
            return checked

        def work(tx: Transaction, checked: list[DomainError | None]) -> UploadResult:
            changed = Provenance(iso_instant(self._clock.now()), uploader.asid, ctx.request_id)
            results = []
            for record, error in zip(records, checked, strict=True):
                if error is None:
                    try:
                        results.append(RecordResult(applied=self._apply(tx, uploader, record, changed)))
                        continue
                    except DomainError as refused_by_store:
                        error = refused_by_store
                results.append(RecordResult(error=error))
            failed = refused + sum(1 for r in results if r.error is not None)
            return UploadResult(results, cpis.file_code(len(results) + refused - failed, failed))

        def outcome(result: UploadResult) -> Outcome:
            return ctx.outcomes.success[0], result.file_code.value

        return self._auditor.run(ctx, prepare, work, outcome)

    def _patient(self, nhs_number: str) -> Patient | None:
        return self._demographics.lookup(nhs_number) if nhs.is_valid(nhs_number) else None

    def _apply(self, tx: Transaction, uploader: System, record: PlanRecord, changed: Provenance) -> Applied:
        key = PlanKey(uploader.ods_code, record.nhs_number, record.plan_type)
        # Two rounds: a concurrent upload may insert the same new key between our read and insert;
        # the second round then finds its row (locked) and updates it.
        for _ in range(2):
            existing = tx.plan_for_update(key)
            applied = cpis.apply(existing, record, key, str(uuid.uuid4()), changed)
            if applied.change is Change.UNCHANGED:
                return applied
            saved = tx.insert_plan(applied.plan) if existing is None else tx.update_plan(applied.plan)
            if saved:
                return applied
        raise RuntimeError("plan upsert lost twice under a row lock")  # a store bug: answered as a 500

    # Clinicians ---------------------------------------------------------------------------------------

    @staticmethod
    def _user(ctx: RequestContext) -> User:
        user = ctx.caller.user
        if user is None:
            raise RuntimeError("CP-IS clinician interactions need an authenticated user")  # authorise() ran first
        return user

    def care_teams(self, ctx: RequestContext, nhs_number: str, declared_unscheduled: bool | None) -> list[Plan]:
        """The child's active plans. An unscheduled access to a child with a plan is recorded, with a
        notification for each responsible authority; no plan, nothing recorded."""
        ctx.nhs_number = nhs_number
        user = self._user(ctx)
        recording = cpis.records_access(declared_unscheduled, user)

        def work(tx: Transaction, _: None) -> list[Plan]:
            if not recording:
                return cpis.active_plans(tx.plans_for(nhs_number), self.today())
            # The user's last listed access is read with the plans (one round trip); used only if one is active.
            plans, last = tx.plans_with_last_access(nhs_number, user.user_id)
            active = cpis.active_plans(plans, self.today())
            if active:
                self._record_access(tx, ctx, nhs_number, user, cpis.authorities_of(active), last)
            return active

        def prefetch(tx: Transaction) -> None:  # queued only once ``_require_valid`` has passed (Auditor.run)
            if recording:
                tx.prefetch_plans_with_last_access(nhs_number, user.user_id)

        # No savepoint (``writes=False``): the search's one refusal, an invalid NHS number, is ``prepare``'s, before
        # the transaction; once the work has written, no rule refuses it, so a refusal never has anything to undo.
        # (Anything else it raises undoes its whole batch, which is then run again one unit at a time: writer.py.)
        return self._auditor.run(ctx, lambda: _require_valid(nhs_number), work, writes=False, prefetch=prefetch)

    def care_team(self, ctx: RequestContext, plan_id: str, declared_unscheduled: bool | None) -> Plan:
        """One active plan by its id (a CareTeam read), recorded as the search for the child is: an
        unscheduled access, with a notification for each responsible authority. A plan that is not shared
        (ended, withdrawn, unknown) is not found, and nothing is recorded."""
        user = self._user(ctx)
        recording = cpis.records_access(declared_unscheduled, user)

        def work(tx: Transaction, _: None) -> Plan:
            found = tx.plan_by_id(plan_id)
            if found is None:
                raise PlanNotFound()
            nhs_number = ctx.nhs_number = found.key.nhs_number
            if recording:
                plans, last = tx.plans_with_last_access(nhs_number, user.user_id)
            else:
                plans, last = tx.plans_for(nhs_number), None
            active = cpis.active_plans(plans, self.today())
            shared = next((plan for plan in active if plan.id == plan_id), None)
            if shared is None:
                raise PlanNotFound()
            if recording:
                self._record_access(tx, ctx, nhs_number, user, cpis.authorities_of(active), last)
            return shared

        return self._auditor.run(ctx, lambda: None, work)

    def alert(self, ctx: RequestContext, alert_id: str) -> tuple[Alert, list[str]]:
        """An alert read back by the clinician who raised it (same SDS user id), with its recipients."""
        user = self._user(ctx)

        def work(tx: Transaction, _: None) -> tuple[Alert, list[str]]:
            found = tx.alert_by_id(alert_id)
            if found is None or found[0].author.user_id != user.user_id:
                raise AlertNotFound()
            ctx.nhs_number, ctx.resource_id = found[0].nhs_number, alert_id
            return found

        return self._auditor.run(ctx, lambda: None, work, writes=False)

    def _record_access(self, tx: Transaction, ctx: RequestContext, nhs_number: str, user: User,
                       authorities: list[str], last: str | None) -> Access:
        """``authorities``: those responsible for the child's active plans (``cpis.authorities_of``), read in this
        transaction; ``last``: the user's last listed access to the child, read with its plans, locked."""
        now = self._clock.now()
        listed = cpis.is_listed(now, datetime.fromisoformat(last) if last else None)
        # Access(id, nhs_number, at, author, listed), by position: keywords cost a third more, on every access
        access = Access(uuid4_text(), nhs_number, iso_instant(now), self._author(user), listed)
        tx.record_access(access)
        for authority in authorities:
            tx.queue_notification(Notification(authority, access.at, access))
        ctx.resource_id = access.id
        return access

    def access_history(self, ctx: RequestContext, nhs_number: str) -> list[Access]:
        """The newest 25 listed unscheduled accesses, while the child has an active plan."""
        ctx.nhs_number = nhs_number

        def work(tx: Transaction, _: None) -> list[Access]:
            if not cpis.active_plans(tx.plans_for(nhs_number), self.today()):
                return []
            return tx.access_history(nhs_number, cpis.HISTORY_LIMIT)

        return self._auditor.run(ctx, lambda: _require_valid(nhs_number), work)

    def raise_alert(self, ctx: RequestContext, nhs_number: str, note: str | None) -> tuple[Alert, list[str]]:
        """A missed-appointment alert for a child on a plan, queued for each responsible authority."""
        ctx.nhs_number = nhs_number
        user = self._user(ctx)

        def work(tx: Transaction, _: None) -> tuple[Alert, list[str]]:
            authorities = cpis.require_responsible(tx.plans_for(nhs_number, lock=True), self.today())
            alert = Alert(id=str(uuid.uuid4()), nhs_number=nhs_number, at=iso_instant(self._clock.now()),
                          author=Author.of(user), note=note)
            tx.record_alert(alert)
            for authority in authorities:
                tx.queue_notification(Notification(authority, alert.at, alert))
            ctx.resource_id = alert.id
            return alert, authorities

        return self._auditor.run(ctx, lambda: _require_valid(nhs_number), work)

    # The local authorities' notification feed --------------------------------------------------------

    def pending(self, ctx: RequestContext, authority_ods: str, limit: int = FEED_LIMIT) -> Feed:
        """The authority's unacknowledged notifications, oldest first: redelivered until acknowledged."""

        def work(tx: Transaction, _: None) -> Feed:
            return Feed(tx.pending_notifications(authority_ods, limit), tx.count_pending(authority_ods))

        return self._auditor.run(ctx, lambda: None, work)

    def acknowledge(self, ctx: RequestContext, authority_ods: str, event_ids: list[str]) -> list[str]:
        """Mark notifications as taken; ids that are unknown, taken already or another authority's are
        ignored (they are never revealed to exist)."""

        def work(tx: Transaction, _: None) -> list[str]:
            return tx.acknowledge(authority_ods, event_ids, iso_instant(self._clock.now()))

        return self._auditor.run(ctx, lambda: None, work)


def _require_valid(nhs_number: str) -> None:
    if not nhs.is_valid(nhs_number):
        raise InvalidNhsNumber()
