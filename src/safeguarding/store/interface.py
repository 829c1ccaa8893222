"""The storage interface. Domain services depend on this, never on a database library."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import date
from typing import Protocol

from ..domain.audit import AuditEvent, AuditRecord
from ..domain.fgm import Indicator
from ..domain.patients import Patient


class StoreUnavailable(Exception):
    """The store cannot be reached or failed; the request cannot be served."""


class Transaction(Protocol):
    """One atomic unit of work. Everything done through it commits together, or none of it does."""

    # Demographics
    def get_patient(self, nhs_number: str) -> Patient | None: ...
    def put_patient(self, patient: Patient) -> None: ...

    # FGM indicators
    def active_indicator(self, nhs_number: str) -> Indicator | None: ...
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

    # Audit
    def append_audit(self, event: AuditEvent) -> AuditRecord: ...


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[Transaction]: ...

    # Reads outside any write transaction (a consistent snapshot, no locks held).
    def read_patient(self, nhs_number: str) -> Patient | None: ...
    def read_indicator(self, indicator_id: str) -> Indicator | None: ...
    def read_history(self, nhs_number: str) -> list[Indicator]: ...

    def audit_records(self) -> Iterator[AuditRecord]: ...
    def audit_head(self) -> tuple[int, str]: ...
    def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the store answers."""
        ...

    def close(self) -> None: ...
