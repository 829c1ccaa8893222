"""``domain.nhs_number.check_digit``: computed in C (``map``), the same digit as the generator it replaced."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguarding.domain.nhs_number import check_digit

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def _as_written_before(first_nine: str) -> int | None:
    total = sum(int(d) * w for d, w in zip(first_nine, _WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_the_same_digit_as_before(first_nine: str) -> None:
    assert check_digit(first_nine) == _as_written_before(first_nine)


@pytest.mark.parametrize("wrong", ["", "12345678", "1234567890"])
def test_anything_but_nine_digits_is_refused_as_before(wrong: str) -> None:
    with pytest.raises(ValueError):
        _as_written_before(wrong)
    with pytest.raises(ValueError):
        check_digit(wrong)


def test_a_non_digit_is_refused_as_before() -> None:
    with pytest.raises(ValueError):
        _as_written_before("12345678x")
    with pytest.raises(ValueError):
        check_digit("12345678x")
