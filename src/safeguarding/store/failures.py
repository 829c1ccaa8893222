"""Storage failures leave the store as ``StoreUnavailable``: callers never see driver or OS errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from ..metrics import STORE_ERRORS
from .interface import StoreUnavailable

log = logging.getLogger("safeguarding.store")


@contextmanager
def unavailable_on(*errors: type[Exception]) -> Iterator[None]:
    """``errors`` raised inside become ``StoreUnavailable``, counted and logged (their type only)."""
    try:
        yield
    except errors as exc:
        raise unavailable(exc) from exc


def unavailable(exc: BaseException) -> StoreUnavailable:
    """The ``StoreUnavailable`` to raise from ``exc`` (``raise unavailable(exc) from exc``), counted and logged
    (its type only): ``unavailable_on`` without a generator's context manager, for a path taken every request."""
    STORE_ERRORS.inc()
    log.error("store.error", extra={"event": "STORE_ERROR", "error": type(exc).__name__})
    return StoreUnavailable()
