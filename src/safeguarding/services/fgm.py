"""The FGM indicator service: query, read, create and remove, each one audited transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Protocol, TypeVar, cast

from ..domain import fgm
from ..domain.clock import Clock, iso_instant, uk_today
from ..domain.errors import IndicatorAlreadyRemoved, IndicatorNotFound, IndicatorVersionMismatch
from ..domain.fgm import Actor, Indicator, IndicatorStatus, RemovalReason
from ..domain.patients import Demographics, Patient
from ..store.interface import Store, Transaction
from .auditing import Auditor
from .context import Outcome, RequestContext

T = TypeVar("T")
P = TypeVar("P")


class JoinedDemographics(Protocol):
    """Demographics held in this store's own table (``joins_indicator``): the search reads the child and its
    active indicator in one statement, inside its own unit of work (on PostgreSQL queued ahead, so it goes
    with the group-commit batch's first round trip)."""

    joins_indicator: bool

    def joined_lookup(self, nhs_number: str) -> Callable[[Transaction], tuple[Patient | None, Indicator | None]]:
        """The read to make in the search's transaction (anything to check first is checked here, outside)."""
        ...


class FgmService:
    def __init__(self, store: Store, demographics: Demographics, clock: Clock, auditor: Auditor) -> None:
        self._store = store
        self._demographics = demographics
        self._clock = clock
        self._auditor = auditor
        # Demographics from this store's own table: the search reads the child and the indicator at once.
        joined = getattr(demographics, "joins_indicator", False)
        self._local = cast(JoinedDemographics, demographics) if joined else None

    def _today(self) -> date:
        return uk_today(self._clock)

    def _run(self, ctx: RequestContext, prepare: Callable[[], P], work: Callable[[Transaction, P], T],
             writes: bool = True) -> T:
        return self._auditor.run(ctx, prepare, work, writes=writes)

    def _traced(self, nhs_number: str) -> Patient:
        fgm.require_valid_nhs_number(nhs_number)
        return fgm.require_traced(self._demographics.lookup(nhs_number))

    def search(self, ctx: RequestContext, nhs_number: str) -> Indicator | None:
        """The child's active indicator, if one is shared today (0 or 1).

        A read only. With local demographics the child and the indicator are read in one statement inside
        the audited unit, which then appends the audit event (on PostgreSQL the read is queued ahead and goes
        with the batch's first round trip: no round trip of its own). With PDS the child is traced and the
        indicator read before the unit. At READ COMMITTED (PostgreSQL) or from a WAL snapshot (SQLite) either
        way sees the state committed when the read ran, before the audit event that records the answer."""
        ctx.nhs_number = nhs_number

        def searched(found: Indicator | None) -> Outcome:
            return ctx.outcomes.searched(found is not None)

        local = self._local
        if local is not None:
            def lookup() -> Callable[[Transaction], tuple[Patient | None, Indicator | None]]:
                return local.joined_lookup(fgm.require_valid_nhs_number(nhs_number))

            def read_inside(tx: Transaction, read: Callable[[Transaction], tuple[Patient | None, Indicator | None]],
                            ) -> Indicator | None:
                patient, found = read(tx)
                return self._shown(ctx, fgm.require_traced(patient), found)

            def prefetch(tx: Transaction) -> None:
                tx.prefetch_patient_and_active_indicator(nhs_number)

            return self._auditor.run(ctx, lookup, read_inside, searched, writes=False, prefetch=prefetch)

        def prepare() -> tuple[Patient, Indicator | None]:
            return self._traced(nhs_number), self._store.read_active_indicator(nhs_number)

        def work(tx: Transaction, prepared: tuple[Patient, Indicator | None]) -> Indicator | None:
            return self._shown(ctx, *prepared)

        return self._auditor.run(ctx, prepare, work, searched, writes=False)

    def _shown(self, ctx: RequestContext, patient: Patient, found: Indicator | None) -> Indicator | None:
        """``found`` if it is shared today (the child under 18), else None."""
        if found is not None and fgm.is_shown(found, patient, self._today()):
            ctx.resource_id = found.id
            return found
        return None

    def _visible(self, ctx: RequestContext, indicator_id: str, version: int | None = None) -> Indicator:
        """An indicator by id (at ``version``, when given: only the current one is held); one that stopped
        being shared at 18 counts as not found."""
        found = self._store.read_indicator(indicator_id)
        if found is None or version is not None and found.version != version:
            raise IndicatorNotFound()
        ctx.nhs_number, ctx.resource_id = found.nhs_number, found.id
        if found.active and not fgm.is_shown(found, self._demographics.lookup(found.nhs_number), self._today()):
            raise IndicatorNotFound()
        return found

    def read(self, ctx: RequestContext, indicator_id: str, version: int | None = None) -> Indicator:
        return self._run(ctx, lambda: self._visible(ctx, indicator_id, version), lambda tx, found: found,
                         writes=False)

    def create(self, ctx: RequestContext, nhs_number: str, assessment_date: date | None) -> Indicator:
        ctx.nhs_number = nhs_number

        def prepare() -> date:
            patient = self._demographics.lookup(fgm.require_valid_nhs_number(nhs_number))
            return fgm.check_create(patient, assessment_date, self._today())

        def work(tx: Transaction, assessed: date) -> Indicator:
            fgm.check_no_active(tx.active_indicator(nhs_number))
            indicator = Indicator(
                id=str(uuid.uuid4()),
                nhs_number=nhs_number,
                assessment_date=assessed,
                status=IndicatorStatus.ACTIVE,
                created_at=iso_instant(self._clock.now()),
                created_by=Actor.of(ctx.caller),
            )
            tx.insert_indicator(indicator)  # the store refuses a second active one atomically
            ctx.resource_id = indicator.id
            return indicator

        return self._run(ctx, prepare, work)

    def _remove(
        self, tx: Transaction, ctx: RequestContext, found: Indicator, reason: RemovalReason | None,
        status: IndicatorStatus, expected_version: int | None = None,
    ) -> Indicator:
        if expected_version is not None and found.version != expected_version:
            raise IndicatorVersionMismatch()
        checked = fgm.check_remove(found, reason, status)
        removed = found.removed(iso_instant(self._clock.now()), Actor.of(ctx.caller), checked, status)
        if not tx.save_removal(removed):
            # Someone else removed it since we read it: for a caller who named the version it read, that is
            # the version check failing; for anyone else, the indicator is already removed.
            raise IndicatorVersionMismatch() if expected_version is not None else IndicatorAlreadyRemoved()
        return removed

    def remove(self, ctx: RequestContext, indicator_id: str, status: IndicatorStatus,
               reason: RemovalReason | None, expected_version: int | None = None) -> Indicator:
        """Remove by indicator id (R4 PUT); with ``expected_version`` (If-Match) only if it is still that
        version, checked in the same transaction as the change."""
        def work(tx: Transaction, found: Indicator) -> Indicator:
            return self._remove(tx, ctx, found, reason, status, expected_version)

        return self._run(ctx, lambda: self._visible(ctx, indicator_id), work)

    def remove_for_patient(self, ctx: RequestContext, nhs_number: str, reason: RemovalReason) -> Indicator:
        """Remove the child's active indicator (DSTU2 delete)."""
        ctx.nhs_number = nhs_number

        def work(tx: Transaction, patient: Patient) -> Indicator:
            found = tx.active_indicator(nhs_number)
            if found is None or not fgm.is_shown(found, patient, self._today()):
                raise IndicatorNotFound()
            ctx.resource_id = found.id
            return self._remove(tx, ctx, found, reason, reason.status)

        return self._run(ctx, lambda: self._traced(nhs_number), work)

    def history(self, nhs_number: str) -> list[Indicator]:
        return self._store.read_history(nhs_number)

    def expire(self, make_ctx: Callable[[], RequestContext]) -> list[Indicator]:
        """Remove the indicators of children who have turned 18, each in its own audited transaction."""
        today = self._today()
        cutoff = _eighteen_years_before(today)
        with self._store.transaction() as tx:
            due = [ind for ind, patient in tx.indicators_to_expire(cutoff) if not patient.is_minor_on(today)]
        expired = []
        for indicator in due:
            ctx = make_ctx()
            ctx.nhs_number, ctx.resource_id = indicator.nhs_number, indicator.id

            def work(tx: Transaction, found: Indicator, ctx: RequestContext = ctx) -> Indicator:
                return self._remove(tx, ctx, found, RemovalReason.TURNED_18, IndicatorStatus.INACTIVE)

            def prepare(found: Indicator = indicator) -> Indicator:
                return found

            try:
                expired.append(self._run(ctx, prepare, work))
            except IndicatorAlreadyRemoved:
                continue  # removed by someone else meanwhile: nothing left to do
        return expired


def _eighteen_years_before(day: date) -> date:
    """The latest birth date of someone who is 18 on ``day``, widened by a day for 29 February."""
    try:
        return day.replace(year=day.year - 18)
    except ValueError:
        return day.replace(year=day.year - 18, day=28)
