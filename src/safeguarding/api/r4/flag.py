"""FGM indicator <-> FHIR R4 Flag (FGM-IS R4 IG data mapping, DIGEST §2.2-2.3, A4)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir.resources.R4B.flag import Flag

from ...domain import nhs_number
from ...domain.fgm import Indicator, IndicatorStatus, RemovalReason
from .systems import NHS_NUMBER_SYSTEM as NHS_NUMBER_SYSTEM  # re-exported: fgm.py names it through here
from .systems import SNOMED

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # the FHIR id type
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


@dataclass(frozen=True, slots=True)
class FlagFacts:
    """What the R4 API reads from a Flag a client sends (create or remove)."""

    id: str | None
    status: str | None
    nhs_number: str | None  # ``subject.identifier.value``, when its system is the NHS number's
    fgm_code: bool  # a coding of ``code`` is the FGM SNOMED concept
    assessment_date: date | None  # ``period.start`` as a calendar date
    removal_extensions: int  # how many removal-reason extensions (either form)
    removal_reason: RemovalReason | None  # the reason, when there is exactly one valid


def facts(flag: Flag) -> FlagFacts:
    """The facts of a validated Flag model."""
    identifier = flag.subject.identifier if flag.subject else None
    codings = flag.code.coding or [] if flag.code else []
    extensions = [ext for ext in flag.extension or [] if ext.url in REMOVAL_EXTENSIONS]
    reason_codes: list[Any] = []
    if len(extensions) == 1:
        ext = extensions[0]
        if ext.valueCoding is not None:
            reason_codes = [ext.valueCoding]
        elif ext.valueCodeableConcept is not None:
            reason_codes = list(ext.valueCodeableConcept.coding or [])
    start = flag.period.start if flag.period else None
    return FlagFacts(
        id=flag.id,
        status=flag.status,
        nhs_number=identifier.value if identifier is not None and nhs_number.is_system(identifier.system) else None,
        fgm_code=any(c.system == SNOMED and c.code == FGM_CODE for c in codings),
        assessment_date=_calendar_date(None if start is None else str(start)),
        removal_extensions=len(extensions),
        removal_reason=_reason({c.code for c in reason_codes if c.system in REMOVAL_SYSTEMS}),
    )


def _calendar_date(text: str | None) -> date | None:
    """A date or dateTime counts by its date; a partial date not at all."""
    if text is None or len(text) < 10:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _reason(codes: set[Any]) -> RemovalReason | None:
    """The R4 removal reason (0 or 2) from the extension's codes in a removal system: exactly one, known."""
    if len(codes) != 1:
        return None
    code = codes.pop()
    return next((reason for reason in R4_REMOVAL_REASONS if reason.value == code), None)


def removed_status(status: str | None) -> IndicatorStatus | None:
    try:
        found = IndicatorStatus(status)
    except ValueError:
        return None
    return found if found is not IndicatorStatus.ACTIVE else None


# The plain Flags FGM-IS clients send, read without building the FHIR model: validating one with
# fhir.resources costs ~100 us here, and a create + remove cycle parses two. Only a strict subset of
# valid FHIR is recognised, each value checked at least as strictly as the model checks it; anything
# else (an element this service does not read, an unusual value, XML) is validated as usual and gets
# the usual answer, errors and all. tests/unit/test_quick_flag.py: both ways give the same facts.
_URI = re.compile(r"\S+")
_CODE = re.compile(r"\S+( \S+)*")
_DATE = re.compile(r"[12][0-9]{3}-[0-9]{2}-[0-9]{2}")
_STATUSES = frozenset({"active", "inactive", "entered-in-error"})
_FLAG = frozenset({"resourceType", "id", "status", "extension", "code", "subject", "period"})
_CODING = frozenset({"system", "code", "display"})
_CONCEPT = frozenset({"coding", "text"})
_REFERENCE = frozenset({"identifier"})
_IDENTIFIER = frozenset({"system", "value"})
_PERIOD = frozenset({"start"})
_EXTENSION = frozenset({"url", "valueCoding"})


class _NotPlain(Exception):
    pass


def quick_facts(data: dict[str, Any]) -> FlagFacts | None:
    """The facts of a plain FGM Flag (parsed JSON), as ``facts`` of its validated model would give them;
    None when ``data`` is not one (validate it instead)."""
    try:
        return _plain(data)
    except (_NotPlain, TypeError, ValueError, KeyError):  # the last three: unforeseen shapes, never a 500
        return None


def _plain(data: dict[str, Any]) -> FlagFacts:
    _only(data, _FLAG, required=("resourceType", "status", "code", "subject"))
    status = data["status"]
    if data["resourceType"] != "Flag" or not isinstance(status, str) or status not in _STATUSES:
        raise _NotPlain
    flag_id = _text(data["id"], FHIR_ID) if "id" in data else None
    _only(data["code"], _CONCEPT, required=("coding",))
    codings = [_coding(item) for item in _items(data["code"]["coding"], 4)]
    if "text" in data["code"]:
        _text(data["code"]["text"])
    _only(data["subject"], _REFERENCE, required=("identifier",))
    identifier = data["subject"]["identifier"]
    _only(identifier, _IDENTIFIER, required=("system", "value"))
    system, value = _text(identifier["system"], _URI), _text(identifier["value"])
    start = None
    if "period" in data:
        _only(data["period"], _PERIOD, required=("start",))
        start = _text(data["period"]["start"], _DATE)
        date.fromisoformat(start)  # a day that does not exist is FHIR's to refuse (ValueError: validate)
    extensions = [_extension(item) for item in _items(data["extension"], 2)] if "extension" in data else []
    removals = [coding for url, coding in extensions if url in REMOVAL_EXTENSIONS]
    return FlagFacts(
        id=flag_id,
        status=status,
        nhs_number=value if nhs_number.is_system(system) else None,
        fgm_code=any(c == (SNOMED, FGM_CODE) for c in codings),
        assessment_date=_calendar_date(start),
        removal_extensions=len(removals),
        removal_reason=_reason({removals[0][1]} if len(removals) == 1 and removals[0][0] in REMOVAL_SYSTEMS
                               else set()),
    )


def _only(value: Any, allowed: frozenset[str], required: tuple[str, ...]) -> None:
    if not isinstance(value, dict) or not allowed.issuperset(value) or not all(key in value for key in required):
        raise _NotPlain


def _items(value: Any, most: int) -> list[Any]:
    if not isinstance(value, list) or not 1 <= len(value) <= most:
        raise _NotPlain
    return value


def _text(value: Any, pattern: re.Pattern[str] | None = None) -> str:
    """A FHIR primitive: a non-empty string, matching ``pattern`` or else with no outer whitespace."""
    if not isinstance(value, str) or not value:
        raise _NotPlain
    if pattern is None and value != value.strip() or pattern is not None and not pattern.fullmatch(value):
        raise _NotPlain
    return value


def _coding(value: Any) -> tuple[str, str]:
    _only(value, _CODING, required=("system", "code"))
    if "display" in value:
        _text(value["display"])
    return _text(value["system"], _URI), _text(value["code"], _CODE)


def _extension(value: Any) -> tuple[str, tuple[str, str]]:
    _only(value, _EXTENSION, required=("url", "valueCoding"))
    return _text(value["url"], _URI), _coding(value["valueCoding"])
