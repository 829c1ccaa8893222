"""What the patient page says when it could not check something: never worded or styled like "there
is nothing". Each reason has its own text; the kind chooses the NHS.UK pattern (docs/web.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..domain import errors as d
from ..domain import fgm
from ..domain.patients import Patient
from . import views

FGM_GUIDANCE = ("https://www.gov.uk/government/publications/multi-agency-statutory-guidance-on-female-genital-"
                "mutilation")
FGM_GUIDANCE_TITLE = "Female genital mutilation: multi-agency statutory guidance (GOV.UK)"


@dataclass(frozen=True)
class NotChecked:
    kind: str  # "not-allowed", "unverified", "superseded", "restricted", "service-error", "refused"
    heading: str
    text: str


def role_refused(what: str, activities: str) -> NotChecked:
    return NotChecked("not-allowed", f"{what} was not checked: your role does not allow it",
                      f"Viewing it needs {activities}. Ask your registration authority if you need it. "
                      "This does not mean there is nothing recorded.")


def could_not_check(what: str, error: Exception) -> NotChecked:
    """Why ``what`` (e.g. "FGM information") could not be checked, from the error that stopped it."""
    lead = f"{what} could not be checked"
    if isinstance(error, d.NhsNumberSuperseded):
        return NotChecked("superseded", f"{lead}: this NHS number has been replaced",
                          "The Personal Demographics Service (PDS) holds a newer NHS number for this patient. Trace "
                          "the patient on PDS and find them again with their current NHS number.")
    if isinstance(error, d.PatientNotTraced):
        return NotChecked("unverified", f"{lead}: the NHS number is not verified",
                          "This NHS number has not been verified on the Personal Demographics Service (PDS). Trace "
                          "the patient on PDS and use the verified NHS number. Do not take this as meaning there is "
                          "nothing recorded.")
    if isinstance(error, d.SensitiveRecord):
        return NotChecked("restricted", f"{lead}: the patient's record is restricted",
                          "The patient's record is restricted (sensitive) on the Personal Demographics Service, so "
                          "this information is not shared here. Follow your organisation's procedure for patients "
                          "with restricted records.")
    if isinstance(error, d.DomainError):
        return NotChecked("refused", lead, views.rule_message(error))
    return NotChecked("service-error", f"{lead}: there is a problem with the service",
                      "Try again in a few minutes. Do not take this as meaning there is nothing recorded. If it "
                      "goes on, contact your service desk.")


def record_refusal(patient: Patient | None, today: date) -> str | None:
    """Why an FGM indicator cannot be recorded for this patient (the rules' own check), or None."""
    try:
        fgm.check_create(patient, today, today)
    except d.GenderNotAllowed:
        return ("An FGM indicator cannot be recorded for this patient: it can only be recorded for a girl (gender "
                "female, not known or indeterminate on PDS).")
    except d.PatientOver18:
        return "An FGM indicator cannot be recorded for this patient: they are 18 or over."
    except d.PatientNotTraced:
        return "An FGM indicator cannot be recorded until the NHS number is verified on PDS."
    except d.DomainError as error:
        return views.rule_message(error)
    return None
