"""``domain.nhs_number.check_digit``: computed in C (``map``, a digit by a look-up), the same digit as the generator
and ``int`` it replaced, and the same refusals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguarding.domain.nhs_number import check_digit, is_valid

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def _as_written_before(first_nine: str) -> int | None:
    total = sum(int(d) * w for d, w in zip(first_nine, _WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def _outcome(compute: object, first_nine: str) -> object:
    try:
        return compute(first_nine)  # type: ignore[operator]
    except ValueError:
        return ValueError


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_the_same_digit_as_before(first_nine: str) -> None:
    assert check_digit(first_nine) == _as_written_before(first_nine)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.characters(categories=["Nd", "Zs", "Lu", "Po"]) | st.sampled_from("0123456789"),
               min_size=8, max_size=10))
def test_the_same_answer_or_refusal_as_before_for_any_text(text: str) -> None:
    # Other scripts' digits are read as int reads them; anything else is refused with ValueError, as before.
    assert _outcome(check_digit, text) == _outcome(_as_written_before, text)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_is_valid_as_before(number: str) -> None:
    assert is_valid(number) == (_as_written_before(number[:9]) == int(number[9]))


@pytest.mark.parametrize("wrong", ["", "12345678", "1234567890", "12345678x"])
def test_anything_but_nine_digits_is_refused_as_before(wrong: str) -> None:
    with pytest.raises(ValueError):
        _as_written_before(wrong)
    with pytest.raises(ValueError):
        check_digit(wrong)
