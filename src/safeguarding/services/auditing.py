"""Writing audit events: inside the change's transaction, or alone for a refused request."""

from __future__ import annotations

from ..domain.clock import Clock, iso_instant
from ..store.interface import Store, Transaction
from .context import Outcome, RequestContext


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
