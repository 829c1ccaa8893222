"""A CP-IS plan -> FHIR R4 CareTeam (producer IG data mapping, DIGEST §3.3, A17).

One CareTeam per plan: the plan type in ``category`` (SNOMED, England-ChildProtectionPlan), the
responsible authority's name and phones in ``name`` and ``telecom`` (office hours ``work``, emergency
duty ``mobile``), the plan's dates in ``period``, and the child (or, for an unborn child, the mother)
by NHS number in ``subject.identifier``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ...domain.cpis import Plan
from .systems import NHS_NUMBER_SYSTEM, ODS_SYSTEM, SNOMED


def care_team(plan: Plan, today: date) -> dict[str, Any]:
    contact = plan.contact
    telecom = [
        {"system": "phone", "value": value, "use": use}
        for value, use in ((contact.office_phone, "work"), (contact.emergency_phone, "mobile"))
        if value
    ]
    period = {"start": plan.start.isoformat()}
    if plan.end is not None:
        period["end"] = plan.end.isoformat()
    team: dict[str, Any] = {
        "resourceType": "CareTeam",
        "id": plan.id,
        "meta": {"versionId": str(plan.version), "lastUpdated": plan.changed.at},
        "status": "active" if plan.is_active(today) else "inactive",
        "category": [{"coding": [{"system": SNOMED, "code": plan.key.plan_type.snomed,
                                  "display": plan.key.plan_type.display}]}],
        "name": contact.name,
        "subject": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": plan.key.nhs_number}},
        "period": period,
        "managingOrganization": [{"identifier": {"system": ODS_SYSTEM, "value": plan.key.authority_ods},
                                  "display": contact.name}],
    }
    if telecom:
        team["telecom"] = telecom
    return team
