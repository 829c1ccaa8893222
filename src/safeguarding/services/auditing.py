"""Writing audit events: inside the change's transaction, or alone for a refused request."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..domain.clock import Clock, iso_instant
from ..domain.errors import DomainError
from ..store.interface import Store, Transaction
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
        """Audit a request that changed nothing (refused before, or by, the rules)."""
        with self._store.transaction() as tx:
            self.record_in(tx, ctx, outcome)
        ctx.audited = True

    def run(self, ctx: RequestContext, prepare: Callable[[], P], work: Callable[[Transaction, P], T],
            outcome: Callable[[T], Outcome] | None = None) -> T:
        """Check what can be checked outside the transaction (demographics may be a remote PDS),
        then do ``work`` and audit it in one transaction. A broken rule is audited on its own.

        ``outcome`` names a success by its result when "OK" says too little (e.g. an upload's file code).
        """
        try:
            prepared = prepare()
            with self._store.transaction() as tx:
                result = work(tx, prepared)
                self.record_in(tx, ctx, outcome(result) if outcome else ctx.outcome_for(None))
        except DomainError as error:
            self.record(ctx, ctx.outcome_for(error))
            raise
        ctx.audited = True
        return result
