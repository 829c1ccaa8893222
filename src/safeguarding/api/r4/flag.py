"""FGM indicator <-> FHIR R4 Flag (FGM-IS R4 IG data mapping, DIGEST §2.2-2.3, A4)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir.resources.R4B.flag import Flag

from ...domain.fgm import Indicator, IndicatorStatus, RemovalReason
from .systems import NHS_NUMBER_SYSTEM as NHS_NUMBER_SYSTEM  # re-exported: fgm.py names it through here
from .systems import SNOMED

FGM_CODE = "902961000000107"
FGM_DISPLAY = "Family history of FGM (female genital mutilation)"

# The normative removal-reason extension, and the form the IG's own example uses (both accepted).
REMOVAL_EXTENSION = "https://fhir.nhs.uk/England/StructureDefinition/Extension-England-FlagRemovalReason"
REMOVAL_SYSTEM = "https://fhir.nhs.uk/England/CodeSystem/England-FGMRemovalReason"
LEGACY_REMOVAL_EXTENSION = "https://fhir.nhs.uk/StructureDefinition/Extension-England-FGMRemovalReason"
LEGACY_REMOVAL_SYSTEM = "https://fhir.nhs.uk/CodeSystem/England-FGMRemovalReason"
REMOVAL_EXTENSIONS = frozenset({REMOVAL_EXTENSION, LEGACY_REMOVAL_EXTENSION})
REMOVAL_SYSTEMS = frozenset({REMOVAL_SYSTEM, LEGACY_REMOVAL_SYSTEM})
R4_REMOVAL_REASONS = {
    RemovalReason.ADDED_IN_ERROR: "Added in error - this child does not have a family history of FGM",
    RemovalReason.HAS_HAD_FGM: "No longer required - this child has had FGM",
}


def to_fhir(indicator: Indicator) -> dict[str, Any]:
    flag: dict[str, Any] = {
        "resourceType": "Flag",
        "id": indicator.id,
        "meta": {
            "versionId": str(indicator.version),
            "lastUpdated": indicator.removal.at if indicator.removal else indicator.created_at,
        },
    }
    reason = indicator.removal.reason if indicator.removal else None
    # DSTU2 reason 1 and the age-18 expiry have no R4 code: the status says removed, no reason is shown.
    if reason in R4_REMOVAL_REASONS:
        flag["extension"] = [
            {
                "url": REMOVAL_EXTENSION,
                "valueCoding": {"system": REMOVAL_SYSTEM, "code": reason.value, "display": R4_REMOVAL_REASONS[reason]},
            }
        ]
    flag["status"] = indicator.status.value
    flag["code"] = {"coding": [{"system": SNOMED, "code": FGM_CODE, "display": FGM_DISPLAY}], "text": FGM_DISPLAY}
    flag["subject"] = {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": indicator.nhs_number}}
    flag["period"] = {"start": indicator.assessment_date.isoformat()}
    return flag


def subject_nhs_number(flag: Flag) -> str | None:
    """The NHS number in ``subject.identifier``, if the system is right."""
    identifier = flag.subject.identifier if flag.subject else None
    if identifier is None or identifier.system != NHS_NUMBER_SYSTEM:
        return None
    return identifier.value


def has_fgm_code(flag: Flag) -> bool:
    codings = flag.code.coding or [] if flag.code else []
    return any(c.system == SNOMED and c.code == FGM_CODE for c in codings)


def assessment_date(flag: Flag) -> date | None:
    """``period.start`` as a calendar date; a dateTime counts by its date, a partial date not at all."""
    start = flag.period.start if flag.period else None
    if start is None:
        return None
    text = str(start)
    if len(text) < 10:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def removal_extensions(flag: Flag) -> list[Any]:
    return [ext for ext in flag.extension or [] if ext.url in REMOVAL_EXTENSIONS]


def removal_reason(flag: Flag) -> RemovalReason | None:
    """The R4 removal reason (0 or 2) from either form of the extension; None if absent or invalid."""
    extensions = removal_extensions(flag)
    if len(extensions) != 1:
        return None
    ext = extensions[0]
    codings = []
    if ext.valueCoding is not None:
        codings = [ext.valueCoding]
    elif ext.valueCodeableConcept is not None:
        codings = list(ext.valueCodeableConcept.coding or [])
    codes = {c.code for c in codings if c.system in REMOVAL_SYSTEMS}
    if len(codes) != 1:
        return None
    code = codes.pop()
    return next((reason for reason in R4_REMOVAL_REASONS if reason.value == code), None)


def removed_status(flag: Flag) -> IndicatorStatus | None:
    try:
        status = IndicatorStatus(flag.status)
    except ValueError:
        return None
    return status if status is not IndicatorStatus.ACTIVE else None
