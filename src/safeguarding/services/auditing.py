"""Writing audit events: inside the change's transaction, or alone for a refused request."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..domain.clock import Clock, iso_instant
from ..domain.errors import DomainError
from ..store.interface import Store, StoreUnavailable, Transaction
from .context import Outcome, RequestContext

T = TypeVar("T")
P = TypeVar("P")


class Auditor:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def record_in(self, tx: Transaction, ctx: RequestContext, outcome: Outcome) -> None:
        tx.append_audit(ctx.audit_event(iso_instant(self._clock.now()), outcome))

    def record(self, ctx: RequestContext, outcome: Outcome) -> None:
        """Audit a request that changed nothing (refused before, or by, the rules).

        When the store cannot take the event (the database is down: the request is being refused with a
        503) it is kept in the store's local spool and reaches the chain when the database is back."""
        event = ctx.audit_event(iso_instant(self._clock.now()), outcome)
        try:
            self._store.run(lambda tx: tx.append_audit(event))
        except StoreUnavailable:
            self._store.spool_audit(event)  # raises StoreUnavailable again when the store has no spool
        ctx.audited = True

    def run(self, ctx: RequestContext, prepare: Callable[[], P], work: Callable[[Transaction, P], T],
            outcome: Callable[[T], Outcome] | None = None, *, writes: bool = True,
            prefetch: Callable[[Transaction], None] | None = None) -> T:
        """Check what can be checked outside the transaction (demographics may be a remote PDS),
        then do ``work`` and audit it in one transaction. A broken rule is audited instead, with the
        work undone (a savepoint; ``writes=False`` says a refusal never has anything to undo: the work only
        reads, or no rule refuses it once it has written). Any other error undoes the whole transaction.

        ``outcome`` names a success by its result when "OK" says too little (e.g. an upload's file code).
        ``prefetch`` queues the work's reads ahead (``Store.run``).
        """
        try:
            prepared = prepare()
        except DomainError as error:
            self.record(ctx, ctx.outcomes.of(error))
            raise

        def unit(tx: Transaction) -> T | _Refused:
            try:
                if writes:
                    with tx.savepoint():
                        result = work(tx, prepared)
                else:
                    result = work(tx, prepared)
            except DomainError as error:
                self.record_in(tx, ctx, ctx.outcomes.of(error))
                return _Refused(error)
            self.record_in(tx, ctx, outcome(result) if outcome else ctx.outcomes.success)
            return result

        done = self._store.run(unit, prefetch)
        ctx.audited = True
        if isinstance(done, _Refused):
            raise done.error
        return done


class _Refused:
    """A unit of work the rules refused: its work undone, its refusal audited, the error for its caller."""

    __slots__ = ("error",)

    def __init__(self, error: DomainError) -> None:
        self.error = error
