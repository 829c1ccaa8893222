"""``unavailable_on``: the driver's and the OS's errors leave the store as ``StoreUnavailable``, counted and logged;
anything else passes through untouched."""

from __future__ import annotations

import logging

import pytest

from safeguarding.metrics import STORE_ERRORS
from safeguarding.store.failures import unavailable_on
from safeguarding.store.interface import StoreUnavailable


def _errors_counted() -> float:
    return STORE_ERRORS._value.get()  # type: ignore[attr-defined,no-any-return]


def test_a_named_error_becomes_store_unavailable_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    before = _errors_counted()
    cause = OSError("disk full: /secret/path")
    with caplog.at_level(logging.ERROR, "safeguarding.store"), pytest.raises(StoreUnavailable) as raised:
        with unavailable_on(ValueError, OSError):
            raise cause
    assert raised.value.__cause__ is cause
    assert _errors_counted() == before + 1
    (record,) = caplog.records
    assert (record.getMessage(), record.event, record.error) == ("store.error", "STORE_ERROR", "OSError")  # type: ignore[attr-defined]
    assert "secret" not in record.getMessage()


def test_other_errors_and_success_pass_through() -> None:
    before = _errors_counted()
    with pytest.raises(KeyError), unavailable_on(ValueError, OSError):
        raise KeyError("x")
    with pytest.raises(ValueError), unavailable_on():
        raise ValueError("nothing named")
    with unavailable_on(ValueError) as entered:
        pass
    assert entered is None
    assert _errors_counted() == before


def test_a_unit_returns_through_it() -> None:
    def unit() -> int:
        with unavailable_on(ValueError):
            return 7
    assert unit() == 7
