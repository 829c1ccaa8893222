"""NHS number validation (10 digits, Modulus 11)."""

from __future__ import annotations

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def check_digit(first_nine: str) -> int | None:
    """The Modulus 11 check digit for nine digits, or None when no valid number exists."""
    total = sum(int(d) * w for d, w in zip(first_nine, _WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid(value: object) -> bool:
    """True when value is a string of exactly 10 ASCII digits whose last digit is the Modulus 11 check."""
    if not isinstance(value, str) or len(value) != 10 or not value.isascii() or not value.isdigit():
        return False
    return check_digit(value[:9]) == int(value[9])


def normalise(value: str) -> str:
    """Strip the spaces people type (``943 476 5919``); does not validate."""
    return value.replace(" ", "")
