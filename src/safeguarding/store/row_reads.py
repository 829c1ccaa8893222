"""The store's one-row reads (a statement each, outside any write transaction), over a way of reading one row.

Written once for both ways the store is read: ``SqlStore`` reads a row on the calling thread, and
``EventLoopStore`` (event_loop.py) hands it to the reader thread on PostgreSQL while the loop serves others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..domain.fgm import Indicator
from ..domain.patients import Patient
from .rows import (
    _ACTIVE_INDICATOR,
    _INDICATOR_BY_ID,
    _PATIENT_BY_NUMBER,
    _indicator_row,
    _patient_row,
    _Sql,
)
from .web_sessions import WEB_SESSION_REVOKED

ReadOne = Callable[[_Sql, dict[str, Any]], "tuple[Any, ...] | None"]


class RowReads:
    def __init__(self, one: ReadOne) -> None:
        self._one = one

    def read_patient(self, nhs_number: str) -> Patient | None:
        row = self._one(_PATIENT_BY_NUMBER, {"nhs_number": nhs_number})
        return _patient_row(row) if row else None

    def read_active_indicator(self, nhs_number: str) -> Indicator | None:
        row = self._one(_ACTIVE_INDICATOR, {"nhs_number": nhs_number})
        return _indicator_row(row) if row else None

    def read_indicator(self, indicator_id: str) -> Indicator | None:
        row = self._one(_INDICATOR_BY_ID, {"id": indicator_id})
        return _indicator_row(row) if row else None

    def web_session_revoked(self, session_hash: str) -> bool:
        return self._one(WEB_SESSION_REVOKED, {"session_hash": session_hash}) is not None
