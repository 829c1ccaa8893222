"""The store as the server's requests use it: chosen once, by the composition root (``app.py``).

A request runs inline on the event loop (``inline.run``). Through this view its unit of work joins the
other requests' in one group-committed transaction (``SqlStore.group_commit``, writer.py) and, on
PostgreSQL, its one-row reads go to the reader thread (pipelined_reads.py); both wait with
``inline.wait``, so the loop serves other requests meanwhile. Only code run by ``inline.run`` may call
``run`` here (anything else gets a ``RuntimeError``, never a silent second write path).

Everything that is not a request (the command line, start-up, a worker thread, tests that seed data)
uses the ``SqlStore`` itself, where each unit of work has a transaction of its own. Both satisfy the
``Store`` interface, so the services neither know nor ask which one they were given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

from ..domain.audit import AuditEvent, AuditRecord
from ..domain.cpis import Access, Notification, Plan
from ..domain.fgm import Indicator
from .row_reads import RowReads
from .sql import SqlStore
from .transaction import SqlTransaction

T = TypeVar("T")


class EventLoopStore(RowReads):
    def __init__(self, store: SqlStore) -> None:
        super().__init__(store.read_one_on_loop)
        self.store = store

    def run(self, unit: Callable[[SqlTransaction], T],
            prefetch: Callable[[SqlTransaction], None] | None = None) -> T:
        return self.store.group_commit(unit, prefetch)

    def transaction(self) -> AbstractContextManager[SqlTransaction]:
        return self.store.transaction()

    def read_history(self, nhs_number: str) -> list[Indicator]:
        return self.store.read_history(nhs_number)

    def read_plans(self, nhs_number: str) -> list[Plan]:
        return self.store.read_plans(nhs_number)

    def read_accesses(self, nhs_number: str) -> list[Access]:
        return self.store.read_accesses(nhs_number)

    def read_notifications(self, authority_ods: str) -> list[Notification]:
        return self.store.read_notifications(authority_ods)

    def audit_records(self, up_to: int | None = None) -> Iterator[AuditRecord]:
        return self.store.audit_records(up_to)

    def audit_head(self) -> tuple[int, str]:
        return self.store.audit_head()

    def spool_audit(self, event: AuditEvent) -> None:
        self.store.spool_audit(event)

    def ping(self) -> None:
        self.store.ping()

    def close(self) -> None:
        self.store.close()
