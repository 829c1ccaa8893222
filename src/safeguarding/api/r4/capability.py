"""The FGM-IS R4 CapabilityStatement: exactly what this server serves, nothing more."""

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
                            {"code": "search-type"},
                            {"code": "create"},
                            {"code": "update", "documentation": "Removal only: status and removal reason."},
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
