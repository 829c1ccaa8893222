"""Storage failures leave the store as ``StoreUnavailable``: callers never see driver or OS errors."""

from __future__ import annotations

import logging
from types import TracebackType

from ..metrics import STORE_ERRORS
from .interface import StoreUnavailable

log = logging.getLogger("safeguarding.store")


class unavailable_on:  # noqa: N801 - used as a function: ``with unavailable_on(errors):``
    """``errors`` raised inside become ``StoreUnavailable``, counted and logged (their type only).

    A class rather than a ``contextmanager`` generator: it wraps every unit of work of every request, and a
    generator's context manager cost ~25 times a plain ``try`` there (docs/performance.md, round 11)."""

    __slots__ = ("_errors",)

    def __init__(self, *errors: type[Exception]) -> None:
        self._errors = errors

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc is not None and isinstance(exc, self._errors):
            STORE_ERRORS.inc()
            log.error("store.error", extra={"event": "STORE_ERROR", "error": type(exc).__name__})
            raise StoreUnavailable() from exc
