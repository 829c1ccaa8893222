"""Domain errors: broken rules, named once, with no HTTP or FHIR knowledge.

Each API adapter maps these to its own wire outcome (R4 OperationOutcome rows, DSTU2 Spine codes).

    DomainError
    ├── InvalidNhsNumber         the number fails the format or Modulus 11 check
    ├── PatientNotTraced         no verified demographics for the number
    ├── PatientOver18
    ├── GenderNotAllowed
    ├── AssessmentDateInvalid    missing, or in the future
    ├── IndicatorAlreadySet
    ├── IndicatorNotFound
    ├── IndicatorAlreadyRemoved
    └── RemovalReasonInvalid
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


class RemovalReasonInvalid(DomainError):
    """The removal reason is missing or not allowed."""

    code = "REMOVAL_REASON_INVALID"
