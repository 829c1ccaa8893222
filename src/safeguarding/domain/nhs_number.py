"""NHS number validation (10 digits, Modulus 11), and the identifier system that names one.

Every API reads the system by one rule (``is_system``) and the R4 APIs emit ``SYSTEM``:

- accepted: the forms the NHS material publishes, compared ignoring case: ``https://fhir.nhs.uk/Id/nhs-number``
  (FHIR R4 guides), ``http://fhir.nhs.uk/Id/nhs-number`` (the same, as some pages and diagrams spell it) and
  ``http://fhir.nhs.net/Id/nhs-number`` (the DSTU2 profiles);
- a missing system is accepted, in searches (``N``, ``|N``) and in resources (an identifier without one): the
  value must still be a valid NHS number, and for FGM-IS a traced one;
- any other system is not an NHS number.

The DSTU2 messages emit ``DSTU2_SYSTEM``: their profiles fix ``Patient.identifier.system`` to it.
"""

from __future__ import annotations

from operator import mul

SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
DSTU2_SYSTEM = "http://fhir.nhs.net/Id/nhs-number"
ACCEPTED_SYSTEMS = (SYSTEM, "http://fhir.nhs.uk/Id/nhs-number", DSTU2_SYSTEM)
_ACCEPTED = frozenset(system.lower() for system in ACCEPTED_SYSTEMS)

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_DIGITS = {str(digit): digit for digit in range(10)}


def check_digit(first_nine: str) -> int | None:
    """The Modulus 11 check digit for nine digits, or None when no valid number exists."""
    if len(first_nine) != len(_WEIGHTS):
        raise ValueError("check_digit takes nine digits")
    try:  # in C: no generator frame a digit (run twice a search), and a digit by a look-up, not ``int``'s parse
        total: int = sum(map(mul, map(_DIGITS.__getitem__, first_nine), _WEIGHTS))
    except KeyError:  # not an ASCII digit: as ``int`` reads it (another script's digit) or refuses it (ValueError)
        total = sum(map(mul, map(int, first_nine), _WEIGHTS))
    return _check(total)


def _check(total: int) -> int | None:
    """The Modulus 11 check digit for the first nine digits' weighted sum, or None when no valid number has it."""
    check = 11 - total % 11
    return 0 if check == 11 else None if check == 10 else check


def is_valid(value: object) -> bool:
    """True when value is a string of exactly 10 ASCII digits whose last digit is the Modulus 11 check."""
    if not isinstance(value, str) or len(value) != 10 or not value.isascii() or not value.isdigit():
        return False
    # ``check_digit``'s sum written out for ten ASCII digits, on their byte values (each digit d is 48 + d, and the
    # weights sum to 54): half the cost, on every request's NHS number (tests/unit/test_domain.py pins it to
    # ``check_digit``).
    d = value.encode("ascii")
    total = d[0] * 10 + d[1] * 9 + d[2] * 8 + d[3] * 7 + d[4] * 6 + d[5] * 5 + d[6] * 4 + d[7] * 3 + d[8] * 2 - 48 * 54
    return _check(total) == d[9] - 48


def normalise(value: str) -> str:
    """Strip the spaces people type (``943 476 5919``); does not validate."""
    return value.replace(" ", "")


def is_system(system: str | None) -> bool:
    """True when ``system`` names the NHS number: one of ``ACCEPTED_SYSTEMS`` in any case, or none at all."""
    return not system or system.lower() in _ACCEPTED
