"""CP-IS accesses -> FHIR R4 AuditEvent, and their authors -> PractitionerRole (DIGEST §3.4, §4.2).

Element choices follow the earlier CP-IS FHIR draft: ``type`` iso-21089-lifecycle ``access``, the
author as the requesting agent (v3-ParticipationType ``AUT``) and observer, the child as the entity.
The PractitionerRole carries what the consumer IG shows: name, job role and organisation.
"""

from __future__ import annotations

import uuid
from typing import Any

from ...domain.cpis import Access, Author
from .systems import NHS_NUMBER_SYSTEM, ODS_SYSTEM, SDS_JOB_ROLE_SYSTEM, SDS_ROLE_PROFILE_SYSTEM, SDS_USER_SYSTEM

LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_ROLE_NAMESPACE = uuid.UUID("1b671a64-40d5-491e-99b0-da01ff1f3341")


def practitioner_role_id(author: Author) -> str:
    """The same author details give the same id, so a search includes each PractitionerRole once."""
    parts = (author.user_id, author.role_profile_id, author.org_code, author.role_code, author.role_name,
             author.org_name, author.name)
    return str(uuid.uuid5(_ROLE_NAMESPACE, "\x1f".join(p or "" for p in parts)))


def job_role(author: Author) -> tuple[str | None, str | None]:
    """The job role R-code (last part of ``S8000:G8000:R8000``) and its name (last part of the CIS2
    ``"Clinical":"Clinical Provision":"Nurse Access Role"``)."""
    code = author.role_code.rsplit(":", 1)[-1] if author.role_code else None
    name = author.role_name.rsplit(":", 1)[-1].strip().strip('"') if author.role_name else None
    return code or None, name or None


def practitioner_role(author: Author, resource_id: str | None = None) -> dict[str, Any]:
    practitioner: dict[str, Any] = {"identifier": {"system": SDS_USER_SYSTEM, "value": author.user_id}}
    if author.name:
        practitioner["display"] = author.name
    organization: dict[str, Any] = {"identifier": {"system": ODS_SYSTEM, "value": author.org_code}}
    if author.org_name:
        organization["display"] = author.org_name
    role: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": resource_id or practitioner_role_id(author),
        "identifier": [{"system": SDS_ROLE_PROFILE_SYSTEM, "value": author.role_profile_id}],
        "practitioner": practitioner,
        "organization": organization,
    }
    code, name = job_role(author)
    if code:
        coding = {"system": SDS_JOB_ROLE_SYSTEM, "code": code}
        if name:
            coding["display"] = name
        role["code"] = [{"coding": [coding]}]
    return role


def audit_event(access: Access) -> dict[str, Any]:
    who = {"reference": f"PractitionerRole/{practitioner_role_id(access.author)}"}
    if access.author.name:
        who["display"] = access.author.name
    return {
        "resourceType": "AuditEvent",
        "id": access.id,
        "type": {"system": LIFECYCLE, "code": "access", "display": "Access/View Record Lifecycle Event"},
        "action": "R",
        "recorded": access.at,
        "outcome": "0",
        "agent": [{
            "role": [{"coding": [{"system": PARTICIPATION, "code": "AUT", "display": "author (originator)"}]}],
            "who": who,
            "requestor": True,
        }],
        "source": {"observer": dict(who)},
        "entity": [{"what": {"type": "Patient",
                             "identifier": {"system": NHS_NUMBER_SYSTEM, "value": access.nhs_number}}}],
    }
