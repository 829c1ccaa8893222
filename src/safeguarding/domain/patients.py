"""Demographics: the facts about a patient that the safeguarding rules need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Protocol


class Gender(str, Enum):
    """PDS administrative gender. ``other`` is PDS's "indeterminate" (Person Stated Gender 9)."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class SecurityLabel(str, Enum):
    """PDS meta.security confidentiality codes."""

    UNRESTRICTED = "U"
    RESTRICTED = "R"
    VERY_RESTRICTED = "V"
    REDACTED = "REDACTED"


@dataclass(frozen=True)
class Patient:
    nhs_number: str
    verified: bool
    birth_date: date | None
    gender: Gender | None
    security: SecurityLabel = SecurityLabel.UNRESTRICTED
    gp_ods_code: str | None = None
    deceased: bool = False
    superseded_by: str | None = None

    def age_on(self, day: date) -> int | None:
        """Whole years of age on ``day`` (a 29 February birthday counts from 1 March)."""
        if self.birth_date is None:
            return None
        born = self.birth_date
        years = day.year - born.year
        if (day.month, day.day) < (born.month, born.day):
            years -= 1
        return years

    def is_minor_on(self, day: date) -> bool:
        age = self.age_on(day)
        return age is not None and age < 18


class Demographics(Protocol):
    """Where patient facts come from: the local demographics store now, a PDS FHIR client later."""

    def lookup(self, nhs_number: str) -> Patient | None: ...
