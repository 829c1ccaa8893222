"""Domain errors: broken rules, named once, with no HTTP or FHIR knowledge.

Each API adapter maps these to its own wire outcome (R4 OperationOutcome rows, DSTU2 Spine codes).

    DomainError
    ├── InvalidNhsNumber         the number fails the format or Modulus 11 check
    ├── PatientNotTraced         no verified demographics for the number
    │   ├── PatientNotFound          CP-IS: no demographics at all (CPR01)
    │   └── NhsNumberNotVerified     CP-IS: demographics, but the number is not verified (CPR03)
    ├── PatientOver18
    ├── GenderNotAllowed
    ├── AssessmentDateInvalid    missing, or in the future
    ├── IndicatorAlreadySet
    ├── IndicatorNotFound
    ├── IndicatorAlreadyRemoved
    ├── IndicatorVersionMismatch the caller named a version that is not the indicator's current one
    ├── RemovalReasonInvalid
    │
    │   CP-IS
    ├── NhsNumberSuperseded      the number has been replaced by another (CPR05)
    ├── SensitiveRecord          the demographics record is restricted (CPR02)
    ├── PlanInvalid              an uploaded plan breaks a rule about its dates or status (CPR07)
    ├── PlanNotFound             no such plan: withdrawing one never uploaded (CPR07), reading one not shared
    ├── AlertNotFound            no such alert raised by this clinician
    ├── PlanOfAnotherAuthority   an upload names another authority (CPR07)
    └── NoActivePlan             an alert for a child with no active plan: no authority to tell
"""

from __future__ import annotations


class DomainError(Exception):
    code = "DOMAIN_ERROR"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__ or self.code)


class InvalidNhsNumber(DomainError):
    """The NHS number is not 10 digits with a valid Modulus 11 check digit."""

    code = "INVALID_NHS_NUMBER"


class PatientNotTraced(DomainError):
    """No verified demographics are held for this NHS number."""

    code = "PATIENT_NOT_TRACED"


class PatientOver18(DomainError):
    """The patient is 18 or over."""

    code = "PATIENT_OVER_18"


class GenderNotAllowed(DomainError):
    """Patient gender must be female, unknown or indeterminate."""

    code = "GENDER_NOT_ALLOWED"


class AssessmentDateInvalid(DomainError):
    """The assessment date is missing or in the future."""

    code = "ASSESSMENT_DATE_INVALID"


class IndicatorAlreadySet(DomainError):
    """The child already has an active FGM indicator."""

    code = "INDICATOR_ALREADY_SET"


class IndicatorNotFound(DomainError):
    """No such indicator."""

    code = "INDICATOR_NOT_FOUND"


class IndicatorAlreadyRemoved(DomainError):
    """The indicator has already been removed."""

    code = "INDICATOR_ALREADY_REMOVED"


class IndicatorVersionMismatch(DomainError):
    """The indicator is no longer at the version the caller named (it changed since they read it)."""

    code = "INDICATOR_VERSION_MISMATCH"


class RemovalReasonInvalid(DomainError):
    """The removal reason is missing or not allowed."""

    code = "REMOVAL_REASON_INVALID"


# CP-IS ------------------------------------------------------------------------------------------


class PatientNotFound(PatientNotTraced):
    """No demographics are held for this NHS number."""

    code = "PATIENT_NOT_FOUND"


class NhsNumberNotVerified(PatientNotTraced):
    """The NHS number is held but not verified."""

    code = "NHS_NUMBER_NOT_VERIFIED"


class NhsNumberSuperseded(DomainError):
    """The NHS number has been superseded by another."""

    code = "NHS_NUMBER_SUPERSEDED"


class SensitiveRecord(DomainError):
    """The patient's demographics record is restricted (sensitive)."""

    code = "SENSITIVE_RECORD"


class PlanInvalid(DomainError):
    """The plan's dates or status break the CP-IS rules."""

    code = "PLAN_INVALID"

    def __init__(self, rule: str) -> None:
        # ``rule`` is one of the fixed texts in domain/cpis.py, never built from input.
        super().__init__(rule)
        self.rule = rule


class PlanNotFound(DomainError):
    """No such plan is held for this authority."""

    code = "PLAN_NOT_FOUND"


class PlanOfAnotherAuthority(DomainError):
    """The plan names another local authority: an authority uploads only its own plans."""

    code = "PLAN_OF_ANOTHER_AUTHORITY"


class NoActivePlan(DomainError):
    """The child has no active child protection plan."""

    code = "NO_ACTIVE_PLAN"


class AlertNotFound(DomainError):
    """No such alert raised by this clinician (another's is never revealed to exist)."""

    code = "ALERT_NOT_FOUND"
