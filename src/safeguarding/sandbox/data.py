"""The sandbox data set: patients in the 999 test range (valid check digits, never issued).

Birth dates are relative to the day the sandbox starts, so "turns 18 tomorrow" stays true: they are
recomputed on every ``serve --sandbox``. Indicators are seeded once, when the data dir is new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ..domain.patients import Gender, Patient, SecurityLabel


@dataclass(frozen=True)
class SandboxPatient:
    key: str
    nhs_number: str
    purpose: str
    gender: Gender | None
    age_years: int
    age_days: int = 0
    verified: bool = True
    security: SecurityLabel = SecurityLabel.UNRESTRICTED
    gp_ods_code: str | None = "Y12345"
    indicator_assessed_days_ago: int | None = None
    name: str = ""

    def birth_date(self, today: date) -> date:
        """Born ``age_years`` years and ``age_days`` days before ``today`` (a negative
        ``age_days`` puts the next birthday that many days ahead)."""
        return _years_before(today - timedelta(days=self.age_days), self.age_years)

    def patient(self, today: date) -> Patient:
        return Patient(
            nhs_number=self.nhs_number,
            verified=self.verified,
            birth_date=self.birth_date(today),
            gender=self.gender,
            security=self.security,
            gp_ods_code=None if self.security is not SecurityLabel.UNRESTRICTED else self.gp_ods_code,
        )


PATIENTS = (
    SandboxPatient("girl-with-indicator", "9990000018", "girl aged 9 with an active FGM indicator",
                   Gender.FEMALE, 9, 40, indicator_assessed_days_ago=120, name="Amina Test"),
    SandboxPatient("girl-without-indicator", "9990000026", "girl aged 12 with no indicator (create one)",
                   Gender.FEMALE, 12, 100, name="Grace Test"),
    SandboxPatient("minor-gender-unknown", "9990000034", "child aged 10, PDS gender unknown", Gender.UNKNOWN, 10),
    SandboxPatient("minor-gender-other", "9990000042", "child aged 14, PDS gender other (indeterminate)",
                   Gender.OTHER, 14),
    SandboxPatient("boy", "9990000050", "boy aged 8: an indicator cannot be created", Gender.MALE, 8),
    SandboxPatient("woman-18", "9990000069", "young woman aged 18: over the age limit", Gender.FEMALE, 18, 30),
    SandboxPatient("restricted-record", "9990000077", "girl aged 11 with a restricted (R) PDS record",
                   Gender.FEMALE, 11, security=SecurityLabel.RESTRICTED),
    SandboxPatient("turns-18-tomorrow", "9990000085", "girl who turns 18 tomorrow, with an active indicator",
                   Gender.FEMALE, 18, -1, indicator_assessed_days_ago=400),
    SandboxPatient("unverified-number", "9990000093", "girl aged 7 whose NHS number is not verified",
                   Gender.FEMALE, 7, verified=False),
    SandboxPatient("girl-for-removal", "9990000107", "girl aged 15 with an active indicator (remove it)",
                   Gender.FEMALE, 15, 200, indicator_assessed_days_ago=30),
)

NOT_IN_DEMOGRAPHICS = "9990000115"  # valid check digit, no such patient


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none: the birthday counts from 1 March
        return day.replace(year=day.year - years, month=3, day=1)


def sandbox_patients(today: date) -> list[Patient]:
    return [entry.patient(today) for entry in PATIENTS]
