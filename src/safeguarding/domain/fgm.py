"""The FGM indicator: a child under 18 has a family history of female genital mutilation.

FGM-IS records only that the family history exists and the date it was assessed. Removal never
destroys data: the indicator keeps who removed it, when and why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from enum import Enum

from . import nhs_number as nhs
from .caller import Caller
from .errors import (
    AssessmentDateInvalid,
    GenderNotAllowed,
    IndicatorAlreadyRemoved,
    IndicatorAlreadySet,
    InvalidNhsNumber,
    PatientNotTraced,
    PatientOver18,
    RemovalReasonInvalid,
)
from .patients import Gender, Patient


class IndicatorStatus(str, Enum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    ENTERED_IN_ERROR = "entered-in-error"


class RemovalReason(str, Enum):
    """Why an indicator was removed. 0-2 are the national codes; 1 exists only in DSTU2."""

    ADDED_IN_ERROR = "0"
    NO_LONGER_AT_RISK = "1"
    HAS_HAD_FGM = "2"
    TURNED_18 = "turned-18"

    @property
    def status(self) -> IndicatorStatus:
        """The status a removal for this reason leaves, when the caller does not say."""
        if self is RemovalReason.ADDED_IN_ERROR:
            return IndicatorStatus.ENTERED_IN_ERROR
        return IndicatorStatus.INACTIVE


ALLOWED_GENDERS = frozenset({Gender.FEMALE, Gender.UNKNOWN, Gender.OTHER})
REMOVED_STATUSES = frozenset({IndicatorStatus.INACTIVE, IndicatorStatus.ENTERED_IN_ERROR})


@dataclass(frozen=True)
class Actor:
    """Who did something to an indicator, as recorded with it."""

    user_id: str | None = None
    role_profile_id: str | None = None
    org_code: str | None = None
    asid: str | None = None

    @classmethod
    def of(cls, caller: Caller) -> Actor:
        user, system = caller.user, caller.system
        return cls(
            user_id=user.user_id if user else None,
            role_profile_id=user.role_profile_id if user else None,
            org_code=user.org_code if user else (system.ods_code if system else None),
            asid=system.asid if system else None,
        )


@dataclass(frozen=True)
class Removal:
    at: str
    by: Actor
    reason: RemovalReason


@dataclass(frozen=True)
class Indicator:
    id: str
    nhs_number: str
    assessment_date: date
    status: IndicatorStatus
    created_at: str
    created_by: Actor
    removal: Removal | None = None
    version: int = 1

    @property
    def active(self) -> bool:
        return self.status is IndicatorStatus.ACTIVE

    def removed(self, at: str, by: Actor, reason: RemovalReason, status: IndicatorStatus) -> Indicator:
        return replace(self, status=status, removal=Removal(at, by, reason), version=self.version + 1)


def require_valid_nhs_number(value: str) -> str:
    if not nhs.is_valid(value):
        raise InvalidNhsNumber()
    return value


def require_traced(patient: Patient | None) -> Patient:
    """Only a verified NHS number, traced against PDS, may be used."""
    if patient is None or not patient.verified:
        raise PatientNotTraced()
    return patient


def check_create(patient: Patient | None, assessment_date: date | None, today: date) -> date:
    """The rules for a new indicator, except uniqueness (the store enforces that atomically).
    Returns the assessment date, checked."""
    traced = require_traced(patient)
    if traced.gender not in ALLOWED_GENDERS:
        raise GenderNotAllowed()
    if not traced.is_minor_on(today):
        raise PatientOver18()
    if assessment_date is None or assessment_date > today:
        raise AssessmentDateInvalid()
    return assessment_date


def check_no_active(existing: Indicator | None) -> None:
    if existing is not None and existing.active:
        raise IndicatorAlreadySet()


def check_remove(indicator: Indicator, reason: RemovalReason | None, status: IndicatorStatus) -> RemovalReason:
    if not indicator.active:
        raise IndicatorAlreadyRemoved()
    if reason is None or status not in REMOVED_STATUSES:
        raise RemovalReasonInvalid()
    return reason


def is_shown(indicator: Indicator, patient: Patient | None, today: date) -> bool:
    """An indicator is shared while it is active and the child is under 18.

    It stops being returned the day the child turns 18, before ``safeguarding expire`` removes it.
    """
    return indicator.active and patient is not None and patient.is_minor_on(today)
