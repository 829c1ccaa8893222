"""An OpenAPI 3.1 description of the FGM-IS and CP-IS FHIR R4 REST APIs and the FGM-IS DSTU2 messaging
API, served at ``/_openapi``.

Hand-written, so it says what the API promises rather than what a framework guesses. It is kept
true by tests: ``tests/security/test_openapi.py`` compares its paths and methods with the app's
routes, and the schema-driven fuzz (``tests/security/test_schema_fuzz.py``, ``scripts/fuzz``)
checks every answer against the statuses, media types, headers and schemas written here.

The resources are described loosely (FHIR's own rules are enforced by the server, and every
refusal is an OperationOutcome); the parameters, headers, security and error responses exactly.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .. import __version__
from ..domain.nhs_number import SYSTEM as NHS_NUMBER_SYSTEM
from ..services.cpis import FEED_LIMIT
from .formats import FORMAT_ALIASES
from .openapi_common import (
    _BODY_ERRORS,
    _COMMON_ERRORS,
    _CPIS_NHS_SEARCH,
    _NHS_SEARCH,
    _REQUEST_HEADERS,
    _SECURED_ERRORS,
    _TRACE_ID,
    _USER_HEADERS,
    CPIS_R4,
    FGM_R4,
    _caseless,
    _flag_body,
    _outcome,
    _ref,
    _resource,
    _searchset,
    _success,
)
from .openapi_cpis import _cpis_paths
from .openapi_dstu2 import dstu2_paths

__all__ = ["CPIS_R4", "FGM_R4", "openapi_document", "openapi_endpoint"]

def openapi_document(*, dstu2: bool = True) -> dict[str, Any]:
    """The document: paths under ``/fgm/FHIR/R4`` and ``/cpis/FHIR/R4`` and (``dstu2``) the FGM-IS DSTU2
    messaging paths under ``/fhir/fgm``, relative to the server that serves it."""
    document = _r4_document()
    if dstu2:
        document["paths"].update(dstu2_paths())
        document["info"]["title"] = "safeguarding: FGM-IS and CP-IS FHIR R4 APIs, FGM-IS DSTU2 messaging"
    return document


def _r4_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "safeguarding: FGM-IS and CP-IS FHIR R4 APIs",
            "version": __version__,
            "description": "FGM Information Sharing, FHIR R4 REST (docs/api-r4.md): clinicians authenticate with "
                           "CIS2-shaped bearer tokens, activity B0370 to search and read, B0380 to create and "
                           "remove. Child Protection Information Sharing, FHIR R4 REST (docs/api-cpis.md): "
                           "clinicians with bearer tokens holding B0107 or B0170; local authority systems with "
                           "a registered client certificate (mutual TLS). Every refusal is an OperationOutcome. "
                           "The FGM-IS DSTU2 messaging API (mutual TLS, docs/api-dstu2.md): POST a message to "
                           "/fhir/fgm/query, /create or /delete with its SOAPAction; the NHS guide's example "
                           "messages are the request examples.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            f"{FGM_R4}/metadata": {
                "get": {
                    "operationId": "metadata",
                    "summary": "The CapabilityStatement",
                    "security": [],
                    "parameters": _REQUEST_HEADERS,
                    "responses": {"200": _success("What this server supports", "CapabilityStatement"),
                                  **_COMMON_ERRORS},
                },
            },
            f"{FGM_R4}/Flag": {
                "get": {
                    "operationId": "searchFlag",
                    "summary": "The child's active FGM indicator (0 or 1), by NHS number (B0370)",
                    "parameters": [_ref("#/components/parameters/patient-identifier"), *_USER_HEADERS],
                    "responses": {"200": _success("A searchset Bundle", "Bundle"), **_SECURED_ERRORS},
                },
                "post": {
                    "operationId": "createFlag",
                    "summary": "Create an FGM indicator (B0380)",
                    "parameters": _USER_HEADERS,
                    "requestBody": _flag_body("An active Flag: SNOMED 902961000000107, subject by NHS number, "
                                              "period.start the assessment date"),
                    "responses": {"201": _success("Created", "Flag", "Location", "ETag"), **_SECURED_ERRORS,
                                  **_BODY_ERRORS},
                },
            },
            f"{FGM_R4}/Flag/{{id}}": {
                "parameters": [_ref("#/components/parameters/id")],
                "get": {
                    "operationId": "readFlag",
                    "summary": "An FGM indicator, active or removed (B0370)",
                    "parameters": _USER_HEADERS,
                    "responses": {"200": _success("The Flag", "Flag", "ETag"),
                                  "404": _outcome("No such indicator (or its child is 18 or over)"),
                                  **_SECURED_ERRORS},
                },
                "put": {
                    "operationId": "removeFlag",
                    "summary": "Remove an FGM indicator: status inactive or entered-in-error with the "
                               "England-FlagRemovalReason extension (B0380)",
                    "parameters": [*_USER_HEADERS, _ref("#/components/parameters/If-Match")],
                    "requestBody": _flag_body("The Flag with its new status and the removal reason"),
                    "responses": {"200": _success("The removed Flag", "Flag", "ETag"),
                                  "412": _outcome("If-Match does not name the Flag's current version"),
                                  **_SECURED_ERRORS, **_BODY_ERRORS},
                },
            },
            f"{FGM_R4}/Flag/{{id}}/_history/{{vid}}": {
                "parameters": [_ref("#/components/parameters/id"), _ref("#/components/parameters/vid")],
                "get": {
                    "operationId": "vreadFlag",
                    "summary": "An FGM indicator at its current version, the create Location (B0370)",
                    "parameters": _USER_HEADERS,
                    "responses": {"200": _success("The Flag", "Flag", "ETag"),
                                  "404": _outcome("No such indicator, or not at that version"),
                                  **_SECURED_ERRORS},
                },
            },
            **_cpis_paths(),
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "A CIS2-shaped JWT from a trusted issuer (docs/security.md)."},
                "mutualTLS": {"type": "mutualTLS",
                              "description": "A client certificate from the configured CA, registered as a "
                                             "local-authority system (docs/api-cpis.md)."},
            },
            "parameters": {
                "patient-identifier": {
                    "name": "patient:identifier", "in": "query", "required": True,
                    "description": f"{NHS_NUMBER_SYSTEM}|<NHS number> (the system in any published form and case, or "
                                   "none), given once",
                    "schema": {"type": "string", "pattern": _NHS_SEARCH},
                    "example": f"{NHS_NUMBER_SYSTEM}|9990000018",
                },
                "cpis-patient-identifier": {
                    "name": "patient:identifier", "in": "query", "required": False,
                    "description": f"{NHS_NUMBER_SYSTEM}|<NHS number> (the system in any published form and case, "
                                   "or none). Exactly one of patient:identifier and patient, given once "
                                   "(else 400 INVALID_SEARCH_DATA)",
                    "schema": {"type": "string", "pattern": _CPIS_NHS_SEARCH},
                    "example": f"{NHS_NUMBER_SYSTEM}|9990000018",
                },
                "cpis-patient": {
                    "name": "patient", "in": "query", "required": False,
                    "description": "As patient:identifier (the design overview's form)",
                    "schema": {"type": "string", "pattern": _CPIS_NHS_SEARCH},
                },
                "include": {"name": "_include", "in": "query", "required": False,
                            "description": "Accepted and ignored: the PractitionerRoles are always included",
                            "schema": {"type": "string"}},
                "count": {"name": "_count", "in": "query", "required": False,
                          "description": f"How many notifications at most (default {FEED_LIMIT})",
                          "schema": {"type": "integer", "minimum": 1, "maximum": FEED_LIMIT}},
                "IsUnscheduledAccessEvent": {
                    "name": "IsUnscheduledAccessEvent", "in": "header", "required": False,
                    "description": "true or false, in any case; absent means unscheduled. Anything else, or the "
                                   "header twice: 400 PRECONDITION_FAILED",
                    "schema": {"type": "string", "pattern": f"^({_caseless('true')}|{_caseless('false')})$"},
                },
                "IsUnscheduledEvent": {
                    "name": "IsUnscheduledEvent", "in": "header", "required": False,
                    "description": "An alias of IsUnscheduledAccessEvent (the IG's header page spells it so once); "
                                   "both given must agree, else 400 PRECONDITION_FAILED",
                    "schema": {"type": "string", "pattern": f"^({_caseless('true')}|{_caseless('false')})$"},
                },
                "id": {"name": "id", "in": "path", "required": True, "description": "The Flag's logical id",
                       "schema": {"type": "string"}},
                "resource-id": {"name": "id", "in": "path", "required": True,
                                "description": "The resource's logical id", "schema": {"type": "string"}},
                "vid": {"name": "vid", "in": "path", "required": True, "description": "The version (meta.versionId)",
                        "schema": {"type": "string"}},
                "If-Match": {"name": "If-Match", "in": "header", "required": False,
                             "description": 'W/"<versionId>" (as ETag), "<versionId>" or *: remove only if the '
                                            "Flag is still at that version, else 412",
                             "schema": {"type": "string"}},
                "format": {"name": "_format", "in": "query", "required": False,
                           "description": "json, xml, or a FHIR media type; wins over Accept (anything else: 406)",
                           "schema": {"enum": sorted(FORMAT_ALIASES)}},
                "X-Request-ID": {"name": "X-Request-ID", "in": "header", "required": False,
                                 "description": "Echoed back; one is made when absent",
                                 "schema": {"type": "string", "pattern": _TRACE_ID}},
                "X-Correlation-ID": {"name": "X-Correlation-ID", "in": "header", "required": False,
                                     "description": "Echoed back", "schema": {"type": "string", "pattern": _TRACE_ID}},
                "TraceID": {"name": "TraceID", "in": "header", "required": False, "description": "Echoed back",
                            "schema": {"type": "string", "pattern": _TRACE_ID}},
                "NHSD-Session-URID": {"name": "NHSD-Session-URID", "in": "header", "required": False,
                                      "description": "The role profile id to act in, when the token selects none",
                                      "schema": {"type": "string"}},
            },
            "headers": {
                "X-Request-ID": {"description": "The request's id (the caller's, or one made here)",
                                 "schema": {"type": "string"}},
                "Location": {"description": "The new resource's URL", "schema": {"type": "string"}},
                "ETag": {"description": 'W/"<version>"', "schema": {"type": "string", "pattern": r'^W/"[0-9]+"$'}},
                "WWW-Authenticate": {"description": "Bearer challenge", "schema": {"type": "string",
                                                                                  "pattern": "^Bearer "}},
            },
            "responses": {
                "BadRequest": _outcome("Invalid request: search data, head parameters, body or FHIR rules "
                                       "(the IG's error rows)"),
                "Unauthenticated": _outcome("No, or no valid, bearer token", authenticate=True),
                "Forbidden": _outcome("The role lacks the activity"),
                "CertificateRefused": _outcome("No client certificate, one not registered, or a system that is not "
                                               "a local authority"),
                "FileError": _outcome("Invalid request: head parameters, or the body is not a batch Bundle with "
                                      "entries (CP-IS file code CPF01)"),
                "NotAcceptable": _outcome("Accept or _format names no supported format"),
                "RequestTimeout": _outcome("The request did not arrive in time"),
                "TooLarge": _outcome("The body is over 1 MiB, or the resource has too many elements"),
                "UnsupportedMediaType": _outcome("Content-Type is not a FHIR JSON or XML type"),
                "HeadersTooLarge": _outcome("The request line and headers are over 64 KiB or 100 fields"),
                "InternalError": _outcome("Unexpected: a generic text with a correlation id"),
                "Unavailable": _outcome("The store is unavailable"),
            },
            "schemas": {
                "Flag": {
                    "type": "object",
                    "required": ["resourceType", "status", "code", "subject"],
                    "properties": {
                        "resourceType": {"const": "Flag"},
                        "id": {"type": "string"},
                        "status": {"enum": ["active", "inactive", "entered-in-error"]},
                        "code": {"type": "object"},
                        "subject": {"type": "object"},
                        "period": {"type": "object"},
                        "extension": {"type": "array", "items": {"type": "object"}},
                        "meta": {"type": "object"},
                    },
                },
                "Bundle": {
                    "type": "object",
                    "required": ["resourceType", "type", "total"],
                    "properties": {
                        "resourceType": {"const": "Bundle"},
                        "type": {"const": "searchset"},
                        "total": {"type": "integer", "minimum": 0, "maximum": 1},
                        "entry": {"type": "array", "maxItems": 1,
                                  "items": {"type": "object", "properties": {
                                      "resource": _ref("#/components/schemas/Flag")}}},
                    },
                },
                "CareTeamBundle": _searchset(["CareTeam"], []),
                "CareTeam": _resource("CareTeam", "status", "subject", status={"type": "string"},
                                      subject={"type": "object"}),
                "AuditEventBundle": _searchset(["AuditEvent"], ["PractitionerRole"]),
                "NotificationBundle": _searchset(["AuditEvent", "Communication"], ["PractitionerRole"]),
                "Communication": _resource("Communication", "status", "subject",
                                           status={"type": "string"}, subject={"type": "object"},
                                           category={"type": "array", "items": {"type": "object"}},
                                           payload={"type": "array", "items": {"type": "object"}},
                                           recipient={"type": "array", "items": {"type": "object"}},
                                           sent={"type": "string"}),
                "Parameters": _resource("Parameters", parameter={"type": "array", "items": {
                    "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}),
                "UploadBundle": _resource("Bundle", "type", "entry", type={"const": "batch"},
                                          entry={"type": "array", "minItems": 1, "items": {
                                              "type": "object", "properties": {"request": {"type": "object"},
                                                                               "resource": {"type": "object"}}}}),
                "BatchResponse": _resource("Bundle", "type", "meta", "entry", type={"const": "batch-response"},
                                           entry={"type": "array", "minItems": 1, "items": {
                                               "type": "object", "required": ["response"], "properties": {
                                                   "response": {"type": "object", "required": ["status", "outcome"],
                                                                "properties": {"status": {"type": "string"}}}}}}),
                "CapabilityStatement": {"type": "object", "required": ["resourceType", "fhirVersion"],
                                        "properties": {"resourceType": {"const": "CapabilityStatement"},
                                                       "fhirVersion": {"const": "4.0.1"}}},
                "OperationOutcome": {
                    "type": "object",
                    "required": ["resourceType", "issue"],
                    "properties": {
                        "resourceType": {"const": "OperationOutcome"},
                        "issue": {
                            "type": "array", "minItems": 1, "maxItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["severity", "code", "details", "diagnostics"],
                                "properties": {
                                    "severity": {"enum": ["fatal", "error", "warning", "information"]},
                                    "code": {"type": "string"},
                                    "details": {"type": "object", "required": ["coding"], "properties": {
                                        "coding": {"type": "array", "minItems": 1, "items": {
                                            "type": "object", "required": ["system", "code", "display"]}}}},
                                    "diagnostics": {"type": "string"},
                                    "expression": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
            },
        },
    }


_DOCUMENT = orjson.dumps(openapi_document())


async def openapi_endpoint(_: Request) -> Response:
    return Response(_DOCUMENT, media_type="application/json")
