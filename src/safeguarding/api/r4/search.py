"""The NHS number search parameter every R4 search reads (FGM-IS Flag, CP-IS CareTeam and AuditEvent).

``[system|]N``, given exactly once among the parameter names the interaction takes; the system by the one
rule of ``domain/nhs_number.py`` (a published form in any case, or none). A wrong system or an invalid
number is ``InvalidNhsNumber``, which each interaction's error table words as its guide does.
"""

from __future__ import annotations

from collections.abc import Callable

from ...domain import nhs_number as nhs
from ...domain.errors import InvalidNhsNumber
from ..errors import ApiError
from ..pipeline import ApiRequest


def nhs_number_parameter(request: ApiRequest, names: tuple[str, ...], not_given_once: Callable[[], ApiError]) -> str:
    """The NHS number searched for; ``not_given_once()`` is raised when the parameters are missing or repeated."""
    values = [value for name in names for value in request.query.getlist(name)]
    if len(values) != 1:
        raise not_given_once()
    system, bar, value = values[0].rpartition("|")
    if bar and not nhs.is_system(system) or not nhs.is_valid(value):
        raise InvalidNhsNumber()
    return value
