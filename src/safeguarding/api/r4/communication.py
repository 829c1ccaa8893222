"""Missed-appointment alerts as FHIR R4 Communication: what a clinician posts, what an authority gets.

The IG has no alert; the shape is ours (docs/api-cpis.md). The author is contained as a
PractitionerRole so that the Communication reads on its own, wherever it is delivered.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.communication import Communication

from ...domain import nhs_number
from ...domain.cpis import Alert
from .auditevent import practitioner_role
from .systems import NHS_NUMBER_SYSTEM, ODS_SYSTEM

ALERT_SYSTEM = "https://safeguarding.invalid/fhir/CodeSystem/cpis-alert-type"
MISSED_APPOINTMENT = "missed-appointment"
MISSED_APPOINTMENT_DISPLAY = "Missed appointment"
NOTE_LIMIT = 1000


def subject_nhs_number(communication: Communication) -> str | None:
    identifier = communication.subject.identifier if communication.subject else None
    if identifier is None or not nhs_number.is_system(identifier.system):
        return None
    return identifier.value


def category_ok(communication: Communication) -> bool:
    """No category (it is implied), or exactly ours."""
    categories = communication.category or []
    if not categories:
        return True
    codings = [c for category in categories for c in category.coding or []]
    return bool(codings) and all(c.system == ALERT_SYSTEM and c.code == MISSED_APPOINTMENT for c in codings)


def note(communication: Communication) -> tuple[bool, str | None]:
    """The optional free-text note: at most one payload, a contentString of up to 1000 characters."""
    payloads = communication.payload or []
    if not payloads:
        return True, None
    if len(payloads) > 1 or payloads[0].contentString is None:
        return False, None
    text = payloads[0].contentString
    return len(text) <= NOTE_LIMIT, text


def communication(alert: Alert, recipients: list[str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": alert.id,
        "contained": [practitioner_role(alert.author, resource_id="author")],
        "status": "completed",
        "category": [{"coding": [{"system": ALERT_SYSTEM, "code": MISSED_APPOINTMENT,
                                  "display": MISSED_APPOINTMENT_DISPLAY}]}],
        "subject": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": alert.nhs_number}},
        "sent": alert.at,
        "recipient": [{"identifier": {"system": ODS_SYSTEM, "value": ods}} for ods in recipients],
        "sender": {"reference": "#author"},
    }
    if alert.note:
        resource["payload"] = [{"contentString": alert.note}]
    return resource
