"""The R4 CapabilityStatements (FGM-IS, CP-IS): exactly what this server serves, nothing more."""

from __future__ import annotations

from typing import Any

from ... import __version__


def fgm_capability_statement(base_url: str, published: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "id": "safeguarding-fgm-is-r4",
        "url": f"{base_url}/metadata",
        "name": "SafeguardingFgmIsR4",
        "title": "FGM-IS FHIR R4 API (safeguarding)",
        "status": "active",
        "date": published,
        "publisher": "safeguarding",
        "kind": "instance",
        "software": {"name": "safeguarding", "version": __version__},
        "implementation": {"description": "FGM Information Sharing service, FHIR R4 REST API", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Bearer tokens (CIS2-shaped, national RBAC): B0370 to query and read, "
                "B0380 to create and remove.",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "OAuth",
                                }
                            ]
                        }
                    ],
                    "description": "Authorization: Bearer <JWT>; role from selected_roleid or NHSD-Session-URID.",
                },
                "resource": [
                    {
                        "type": "Flag",
                        "profile": "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Flag",
                        "documentation": "One Flag per FGM indicator (SNOMED 902961000000107). Search returns "
                        "the active indicator only (0 or 1). Removal is PUT with status inactive or "
                        "entered-in-error and the England-FlagRemovalReason extension.",
                        "interaction": [
                            {"code": "read"},
                            {"code": "vread", "documentation": "The current version only (readHistory false)."},
                            {"code": "search-type"},
                            {"code": "create"},
                            {"code": "update", "documentation": "Removal only: status and removal reason. If-Match "
                             "(W/\"<versionId>\") makes it conditional on the version: 412 when it is not the "
                             "current one."},
                        ],
                        "versioning": "versioned-update",
                        "readHistory": False,
                        "updateCreate": False,
                        "conditionalCreate": False,
                        "conditionalUpdate": False,
                        "conditionalDelete": "not-supported",
                        "searchParam": [
                            {
                                "name": "patient",
                                "definition": "http://hl7.org/fhir/SearchParameter/clinical-patient",
                                "type": "reference",
                                "documentation": "Only with the :identifier modifier: "
                                "patient:identifier=https://fhir.nhs.uk/Id/nhs-number|<NHS number>",
                            }
                        ],
                    }
                ],
            }
        ],
    }


CPIS_PRODUCER = "https://fhir.nhs.uk/CapabilityStatement/CPIS-FHIR-API-Producer"
_OAUTH = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth"}]}
_MUTUAL_TLS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                           "code": "Certificates"}]}
# clinical-patient is a reference parameter (the producer statement calls it a token): searched by the
# :identifier modifier, or by the NHS number as the Patient's id (the design overview's patient=<NHS number>).
_PATIENT = {
    "name": "patient",
    "definition": "http://hl7.org/fhir/SearchParameter/clinical-patient",
    "type": "reference",
    "documentation": "patient:identifier=https://fhir.nhs.uk/Id/nhs-number|<NHS number>, or patient=<NHS number>; "
    "given once. An unborn child's plan is found by the mother's NHS number.",
}


def cpis_capability_statement(base_url: str, published: str) -> dict[str, Any]:
    """The CP-IS producer CapabilityStatement's CareTeam and AuditEvent interactions (CareTeam read by id and
    search; AuditEvent search: the producer's AuditEvent "read" is the access-history search, there is no read
    of one access by id), the alert, and the local authority interactions."""
    return {
        "resourceType": "CapabilityStatement",
        "id": "safeguarding-cp-is-r4",
        "url": f"{base_url}/metadata",
        "name": "SafeguardingCpIsR4",
        "title": "CP-IS FHIR R4 API (safeguarding)",
        "status": "active",
        "date": published,
        "publisher": "safeguarding",
        "kind": "instance",
        "instantiates": [CPIS_PRODUCER],
        "software": {"name": "safeguarding", "version": __version__},
        "implementation": {"description": "Child Protection Information Sharing service, FHIR R4 REST API",
                           "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Clinicians (bearer tokens, national RBAC B0107 or B0170) search CareTeam and "
                "AuditEvent and raise missed-appointment alerts (POST Communication). Header "
                "IsUnscheduledAccessEvent (or its alias IsUnscheduledEvent): true (or absent) records an unscheduled "
                "access for callers holding "
                "B0107; false, or a caller with only B0170, is a scheduled (silent) read. "
                "Local authority systems (client certificates registered as local-authority) upload plans as a "
                "batch Bundle of CarePlans (POST [base]), read their notification feed (GET [base]/notifications, "
                "a searchset of AuditEvent and Communication resources) and acknowledge what they have taken "
                "(POST [base]/notifications/$acknowledge, a Parameters resource). See docs/api-cpis.md.",
                "security": {
                    "cors": False,
                    "service": [_OAUTH, _MUTUAL_TLS],
                    "description": "Clinicians: OIDC and OAuth2 via user present CIS2 (Authorization: Bearer <JWT>). "
                    "Local authorities: mutual TLS with a registered client certificate.",
                },
                "resource": [
                    {
                        "type": "CareTeam",
                        "profile": "http://hl7.org/fhir/StructureDefinition/CareTeam",
                        "documentation": "One CareTeam per active plan (no end date, or an end date today or later): "
                        "category from England-ChildProtectionPlan, the responsible authority's name and phones, "
                        "the plan's period. No plan: an empty searchset.",
                        "interaction": [
                            {"code": "read", "documentation": "One shared plan by its id, with the search's access "
                             "rules and recording (an unscheduled access is recorded and notified)."},
                            {"code": "search-type"},
                        ],
                        "searchParam": [_PATIENT],
                    },
                    {
                        "type": "AuditEvent",
                        "profile": "http://hl7.org/fhir/StructureDefinition/AuditEvent",
                        "documentation": "The access history: the newest 25 unscheduled accesses, repeats by the same "
                        "user within 24 hours listed once, each with its PractitionerRole included "
                        "(search.mode include) whatever _include says.",
                        "interaction": [{"code": "search-type"}],
                        "searchInclude": ["PractitionerRole"],
                        "searchParam": [{**_PATIENT, "documentation": _PATIENT["documentation"] + " "
                                         "AuditEvent.entity.what.where(resolve() is Patient)"}],
                    },
                    {
                        "type": "CarePlan",
                        "profile": "http://hl7.org/fhir/StructureDefinition/CarePlan",
                        "documentation": "Only inside a local authority's batch upload (POST [base], Bundle type "
                        "batch, entries POST CarePlan): an upsert keyed by (authority, NHS number, plan type). "
                        "Status active, completed (ended) or entered-in-error (withdrawn). There is no POST "
                        "[base]/CarePlan and no read: a plan is shared as CareTeam.",
                    },
                    {
                        "type": "Communication",
                        "profile": "http://hl7.org/fhir/StructureDefinition/Communication",
                        "documentation": "A missed-appointment alert for a child on a plan, delivered to the "
                        "responsible authorities' notification feeds.",
                        "interaction": [
                            {"code": "create"},
                            {"code": "read", "documentation": "By the clinician who raised it (same SDS user id)."},
                            {"code": "vread", "documentation": "Version 1, its only version."},
                        ],
                    },
                ],
                "interaction": [{"code": "batch", "documentation": "Local authority plan upload."}],
            }
        ],
    }
