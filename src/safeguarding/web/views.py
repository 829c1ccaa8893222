"""How things read on the page: NHS numbers, dates, people, plans. No HTTP, no services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..domain import errors as d
from ..domain.clock import UK
from ..domain.cpis import Access, Plan
from ..domain.fgm import Indicator, RemovalReason
from ..domain.patients import Gender, Patient, SecurityLabel

GENDERS = {Gender.FEMALE: "Female", Gender.MALE: "Male", Gender.UNKNOWN: "Not known",
           Gender.OTHER: "Indeterminate"}

REMOVAL_REASONS = {
    RemovalReason.ADDED_IN_ERROR: "Added in error - this child does not have a family history of FGM",
    RemovalReason.HAS_HAD_FGM: "No longer required - this child has had FGM",
}

# Why a rule refused an action, as a clinician reads it (fixed texts: never built from input).
RULE_MESSAGES: dict[type[d.DomainError], str] = {
    d.InvalidNhsNumber: "The NHS number is not valid.",
    d.PatientNotTraced: "This NHS number has not been verified on the Personal Demographics Service (PDS). "
                        "Trace the patient on PDS first.",
    d.PatientOver18: "An FGM indicator cannot be recorded: the patient is 18 or over.",
    d.GenderNotAllowed: "An FGM indicator cannot be recorded: the patient's gender on PDS must be female, "
                        "not known or indeterminate.",
    d.AssessmentDateInvalid: "The assessment date must be today or in the past.",
    d.IndicatorAlreadySet: "This child already has an active FGM indicator.",
    d.IndicatorNotFound: "The FGM indicator was not found. It may have been removed by someone else.",
    d.IndicatorAlreadyRemoved: "The FGM indicator has already been removed.",
    d.RemovalReasonInvalid: "Choose why the indicator is being removed.",
}


def rule_message(error: d.DomainError) -> str:
    for kind in type(error).__mro__:
        if kind in RULE_MESSAGES:
            return RULE_MESSAGES[kind]
    return "The request could not be completed."


def nhs_number(value: str) -> str:
    """``9990000018`` -> ``999 000 0018``."""
    return f"{value[:3]} {value[3:6]} {value[6:]}" if len(value) == 10 else value


def long_date(value: date | None) -> str:
    return f"{value.day} {value:%B %Y}" if value else "Not known"


def instant(value: str) -> str:
    """A stored UTC instant as a time in England: ``23 November 2026 at 2:05pm``."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UK)
    hour = moment.hour % 12 or 12
    return f"{moment.day} {moment:%B %Y} at {hour}:{moment:%M}{'am' if moment.hour < 12 else 'pm'}"


@dataclass(frozen=True)
class Banner:
    nhs_number: str
    born: str
    age: str
    gender: str
    verified: bool
    restricted: bool


def banner(number: str, patient: Patient | None, today: date) -> Banner | None:
    if patient is None:
        return None
    age = patient.age_on(today)
    return Banner(
        nhs_number=nhs_number(number),
        born=long_date(patient.birth_date),
        age=("Not known" if age is None else f"{age} year{'s' if age != 1 else ''}"),
        gender=GENDERS.get(patient.gender, "Not known") if patient.gender else "Not known",
        verified=patient.verified,
        restricted=patient.security is not SecurityLabel.UNRESTRICTED,
    )


def indicator(found: Indicator) -> dict[str, Any]:
    by = found.created_by
    return {"id": found.id, "assessed": long_date(found.assessment_date), "recorded": instant(found.created_at),
            "organisation": organisation(by.org_code), "org_code": by.org_code}


def user_label(user: Any) -> str:
    """Who is signed in, as a person reads it: name, job role, organisation."""
    parts = [user.name or user.user_id, role_name(user.role_name) if user.role_name else None,
             organisation(user.org_code, user.org_name)]
    return ", ".join(p for p in parts if p)


def plan(found: Plan) -> dict[str, Any]:
    contact = found.contact
    return {
        "type": found.key.plan_type.display,
        "start": long_date(found.start),
        "end": long_date(found.end) if found.end else "No end date",
        "authority": contact.name,
        "authority_ods": found.key.authority_ods,
        "office_phone": contact.office_phone,
        "emergency_phone": contact.emergency_phone,
    }


def access(found: Access) -> dict[str, Any]:
    author = found.author
    role = role_name(author.role_name) if author.role_name else None
    return {
        "at": instant(found.at),
        "who": author.name or author.user_id,
        "role": " ".join(part for part in (role, f"({author.role_code})" if author.role_code else None) if part)
        or "Not known",
        "organisation": organisation(author.org_code, author.org_name),
        "org_code": author.org_code,
    }


def phone(value: str | None) -> str:
    """``01134960001`` -> ``0113 496 0001`` (UK layout for display; the link keeps the digits)."""
    if not value:
        return ""
    digits = value.replace(" ", "")
    if len(digits) == 11 and digits.startswith("07"):
        return f"{digits[:5]} {digits[5:]}"
    if len(digits) == 11 and digits.startswith("01"):
        return f"{digits[:4]} {digits[4:7]} {digits[7:]}"
    return value


def role_name(value: object) -> str:
    """CIS2 role names read ``"Clinical":"Clinical Provision":"Nurse Access Role"``: the last part."""
    if not isinstance(value, str) or not value:
        return "Role"
    return value.rsplit(":", 1)[-1].strip('"') or value


# Organisation names by ODS code, for where a person reads (the sandbox's own organisations; a live
# deployment gets names from the CIS2 token or the record itself, and shows the code when it has none).
ORGANISATIONS = {"RR8": "Sandbox City Hospital NHS Trust", "B86022": "Sandbox Medical Practice",
                 "SANDBOXLA": "Sandbox City Council"}

# National RBAC activities these services use, by what they let a person do.
ACTIVITIES = {"B0370": "View FGM information", "B0380": "Record and remove FGM indicators",
              "B0107": "View child protection information in unscheduled care",
              "B0170": "View child protection information in scheduled care"}


def organisation(code: object, name: object = None) -> str:
    """An organisation's name for a reader: the name given, else the directory's, else the code."""
    if isinstance(name, str) and name and name != code:
        return name
    if isinstance(code, str) and code:
        return ORGANISATIONS.get(code, code)
    return "Not known"


def activity_names(codes: list[str]) -> str:
    named = [f"{ACTIVITIES[c]} ({c})" if c in ACTIVITIES else c for c in codes]
    return ", ".join(named) or "none"
