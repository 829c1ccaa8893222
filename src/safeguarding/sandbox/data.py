"""The sandbox data set: patients in the 999 test range (valid check digits, never issued), and the
local authorities that share CP-IS plans for some of them.

Birth dates are relative to the day the sandbox starts, so "turns 18 tomorrow" stays true: they are
recomputed on every ``serve --sandbox``. Indicators and plans are seeded once, when the data dir is new.
Phone numbers are Ofcom's drama ranges (never allocated).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ..domain.cpis import PlanType
from ..domain.patients import Gender, Patient, SecurityLabel


@dataclass(frozen=True)
class SandboxAuthority:
    """A local authority: a registered ``local-authority`` system with a client certificate."""

    key: str
    name: str
    asid: str
    ods: str
    office_phone: str
    emergency_phone: str


AUTHORITIES = (
    SandboxAuthority("sandbox-city", "Sandbox City Council", "300000000101", "SBC01", "01134960001", "07700900001"),
    SandboxAuthority("testshire", "Testshire County Council", "300000000202", "TCC02", "01632960002", "07700900002"),
)


@dataclass(frozen=True)
class SandboxPlan:
    """A plan seeded for a patient. ``ends_in_days`` negative: the plan ended that many days ago."""

    authority: str  # SandboxAuthority.key
    plan_type: PlanType
    started_days_ago: int
    ends_in_days: int | None = None
    withdrawn: bool = False
    # Kept true on every start (the end date moved to today + ends_in_days), not only at creation.
    refreshed: bool = False

    @property
    def state(self) -> str:
        if self.withdrawn:
            return "withdrawn"
        if self.ends_in_days is not None and self.ends_in_days < 0:
            return "ended"
        return "ending today" if self.ends_in_days == 0 else "active"


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
    plans: tuple[SandboxPlan, ...] = ()
    superseded_by: str | None = None
    indicator_removed: bool = False  # the seeded indicator is then removed (reason 2), under a fixed id

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
            superseded_by=self.superseded_by,
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
    # CP-IS
    SandboxPatient("child-on-cpp", "9990000123", "boy aged 6 on a child protection plan (Sandbox City Council)",
                   Gender.MALE, 6, 50, plans=(SandboxPlan("sandbox-city", PlanType.CPP, 120),)),
    SandboxPatient("looked-after-child", "9990000131", "girl aged 13, looked after (Testshire County Council)",
                   Gender.FEMALE, 13, 10, plans=(SandboxPlan("testshire", PlanType.LAC, 400),)),
    SandboxPatient("expectant-mother", "9990000158",
                   "woman aged 24 whose unborn child has a plan (Sandbox City Council): search by her number",
                   Gender.FEMALE, 24, 80, plans=(SandboxPlan("sandbox-city", PlanType.UCP, 60, ends_in_days=90),)),
    SandboxPatient("child-plan-ended", "9990000166", "girl aged 9 whose plan ended 30 days ago: nothing shared",
                   Gender.FEMALE, 9, 5, plans=(SandboxPlan("sandbox-city", PlanType.CPP, 300, ends_in_days=-30),)),
    SandboxPatient("child-plan-withdrawn", "9990000174", "boy aged 11 whose plan was withdrawn: nothing shared",
                   Gender.MALE, 11, 70, plans=(SandboxPlan("testshire", PlanType.CPP, 45, withdrawn=True),)),
    SandboxPatient("child-two-plans", "9990000182",
                   "girl aged 4 on a plan with Sandbox City and looked after by Testshire: two CareTeams",
                   Gender.FEMALE, 4, 200, plans=(SandboxPlan("sandbox-city", PlanType.CPP, 30),
                                                 SandboxPlan("testshire", PlanType.LAC, 20))),
    SandboxPatient("superseded-number", "9990000190", "boy aged 8 whose NHS number was superseded (upload: CPR05)",
                   Gender.MALE, 8, superseded_by="9990000204"),
    # Error simulation (sandbox/scenarios.py): patients whose answers a client must handle.
    SandboxPatient("slow-answer", "9990000239",
                   "girl aged 10 whose demographics answer slowly: FGM-IS requests and CP-IS uploads for her are held",
                   Gender.FEMALE, 10, 60),
    SandboxPatient("girl-indicator-removed", "9990000255",
                   "girl aged 13 whose indicator was removed (removing it again: 'Flag has already been removed')",
                   Gender.FEMALE, 13, 150, indicator_assessed_days_ago=90, indicator_removed=True),
    SandboxPatient("child-plan-ending-today", "9990000247",
                   "boy aged 7 whose plan ends today (shared today, not tomorrow; kept so on every start)",
                   Gender.MALE, 7, 90,
                   plans=(SandboxPlan("sandbox-city", PlanType.CPP, 200, ends_in_days=0, refreshed=True),)),
)

NOT_IN_DEMOGRAPHICS = "9990000115"  # valid check digit, no such patient
REMOVED_INDICATOR_ID = "5a9f1c1e-0c4b-4d55-9c38-7e1d2b3a4f55"  # 9990000255's removed indicator, in every sandbox


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none: the birthday counts from 1 March
        return day.replace(year=day.year - years, month=3, day=1)


def sandbox_patients(today: date) -> list[Patient]:
    return [entry.patient(today) for entry in PATIENTS]
