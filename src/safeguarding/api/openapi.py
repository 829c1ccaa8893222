"""An OpenAPI 3.1 description of the FGM-IS and CP-IS FHIR R4 REST APIs and the FGM-IS DSTU2 messaging
API (``openapi_dstu2.py``), served at ``/_openapi``.

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
from ..domain import nhs_number
from ..services.cpis import FEED_LIMIT
from .formats import FORMAT_ALIASES
from .openapi_dstu2 import dstu2_paths

FGM_R4 = "/fgm/FHIR/R4"
CPIS_R4 = "/cpis/FHIR/R4"
FHIR_MEDIA_TYPES = ("application/fhir+json", "application/fhir+xml")
NHS_NUMBER_SYSTEM = nhs_number.SYSTEM
_TRACE_ID = r"^[A-Za-z0-9._:\-]{1,128}$"


def _caseless(text: str) -> str:
    """A regular expression matching ``text`` in any case (JSON Schema patterns have no flags)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else "\\." if c == "." else c for c in text)


# Every NHS number search: [system|]N, the system one of the published forms in any case, or none
# (domain/nhs_number.py).
_NHS_SEARCH = "^((" + "|".join(_caseless(system) for system in nhs_number.ACCEPTED_SYSTEMS) + ")?\\|)?[0-9]{10}$"
_CPIS_NHS_SEARCH = _NHS_SEARCH


def _ref(name: str) -> dict[str, str]:
    return {"$ref": name}


def _content(schema: str) -> dict[str, Any]:
    # XML bodies are FHIR XML of the same resource: described as text (JSON Schema cannot say more).
    return {"application/fhir+json": {"schema": _ref(f"#/components/schemas/{schema}")},
            "application/fhir+xml": {"schema": {"type": "string"}}}


def _outcome(description: str, *, authenticate: bool = False) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-ID": _ref("#/components/headers/X-Request-ID")}
    if authenticate:
        headers["WWW-Authenticate"] = _ref("#/components/headers/WWW-Authenticate")
    return {"description": description, "headers": headers, "content": _content("OperationOutcome")}


# Answers every interaction may give: the pipeline's own refusals (docs/api-r4.md "Where the IG is silent").
_COMMON_ERRORS = {
    "400": _ref("#/components/responses/BadRequest"),
    "406": _ref("#/components/responses/NotAcceptable"),
    "408": _ref("#/components/responses/RequestTimeout"),
    "431": _ref("#/components/responses/HeadersTooLarge"),
    "500": _ref("#/components/responses/InternalError"),
    "503": _ref("#/components/responses/Unavailable"),
}
_SECURED_ERRORS = {
    **_COMMON_ERRORS,
    "401": _ref("#/components/responses/Unauthenticated"),
    "403": _ref("#/components/responses/Forbidden"),
}
_BODY_ERRORS = {
    "413": _ref("#/components/responses/TooLarge"),
    "415": _ref("#/components/responses/UnsupportedMediaType"),
}
_REQUEST_HEADERS = [
    _ref("#/components/parameters/format"),
    _ref("#/components/parameters/X-Request-ID"),
    _ref("#/components/parameters/X-Correlation-ID"),
    _ref("#/components/parameters/TraceID"),
]
_USER_HEADERS = [*_REQUEST_HEADERS, _ref("#/components/parameters/NHSD-Session-URID")]


def _success(description: str, schema: str, *headers: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {name: _ref(f"#/components/headers/{name}") for name in ("X-Request-ID", *headers)},
        "content": _content(schema),
    }


def _flag_body(description: str) -> dict[str, Any]:
    return {"required": True, "description": description,
            "content": {**_content("Flag"), "application/json": {"schema": _ref("#/components/schemas/Flag")}}}


def _body(schema: str, description: str) -> dict[str, Any]:
    return {"required": True, "description": description,
            "content": {**_content(schema), "application/json": {"schema": _ref(f"#/components/schemas/{schema}")}}}


# CP-IS (docs/api-cpis.md). Local authority systems present a client certificate: none, or one that is not a
# registered local authority, is 403 ACCESS_DENIED (never 401: there is no challenge to answer).
_MUTUAL_TLS: list[dict[str, list[str]]] = [{"mutualTLS": []}]
_AUTHORITY_ERRORS = {**_COMMON_ERRORS, "403": _ref("#/components/responses/CertificateRefused")}
_CPIS_SEARCH = [_ref("#/components/parameters/cpis-patient-identifier"), _ref("#/components/parameters/cpis-patient"),
                _ref("#/components/parameters/IsUnscheduledAccessEvent"),
                _ref("#/components/parameters/IsUnscheduledEvent"), *_USER_HEADERS]


def _cpis_paths() -> dict[str, Any]:
    return {
        CPIS_R4: {
            "post": {
                "operationId": "cpisUpload",
                "summary": "A local authority's batch upload of child protection plans (POST CarePlan entries)",
                "security": _MUTUAL_TLS,
                "parameters": _REQUEST_HEADERS,
                "requestBody": _body("UploadBundle", "A batch Bundle whose entries are POST CarePlan; each entry "
                                                     "stands alone (docs/api-cpis.md)"),
                "responses": {"200": _success("A batch-response: each entry's status and CP-IS record code, the "
                                              "file code in meta.tag", "BatchResponse"),
                              "400": _ref("#/components/responses/FileError"),
                              **{k: v for k, v in _AUTHORITY_ERRORS.items() if k != "400"}, **_BODY_ERRORS},
            },
        },
        f"{CPIS_R4}/metadata": {
            "get": {
                "operationId": "cpisMetadata",
                "summary": "The CP-IS CapabilityStatement",
                "security": [],
                "parameters": _REQUEST_HEADERS,
                "responses": {"200": _success("What this server supports", "CapabilityStatement"),
                              **_COMMON_ERRORS},
            },
        },
        f"{CPIS_R4}/CareTeam": {
            "get": {
                "operationId": "searchCareTeam",
                "summary": "The child's active child protection plans, one CareTeam each (B0107 or B0170); an "
                           "unscheduled B0107 access is recorded and notified",
                "parameters": _CPIS_SEARCH,
                "responses": {"200": _success("A searchset Bundle of CareTeams", "CareTeamBundle"),
                              **_SECURED_ERRORS},
            },
        },
        f"{CPIS_R4}/CareTeam/{{id}}": {
            "parameters": [_ref("#/components/parameters/resource-id")],
            "get": {
                "operationId": "readCareTeam",
                "summary": "One active child protection plan by its id (B0107 or B0170); recorded and notified "
                           "as the search is",
                "parameters": [_ref("#/components/parameters/IsUnscheduledAccessEvent"),
                               _ref("#/components/parameters/IsUnscheduledEvent"), *_USER_HEADERS],
                "responses": {"200": _success("The CareTeam", "CareTeam", "ETag"),
                              "404": _outcome("No such plan, or it is not shared (ended, withdrawn)"),
                              **_SECURED_ERRORS},
            },
        },
        f"{CPIS_R4}/AuditEvent": {
            "get": {
                "operationId": "searchAuditEvent",
                "summary": "The child's access history, PractitionerRoles included (B0107 or B0170)",
                "parameters": [*_CPIS_SEARCH, _ref("#/components/parameters/include")],
                "responses": {"200": _success("A searchset Bundle of AuditEvents and their PractitionerRoles",
                                              "AuditEventBundle"),
                              **_SECURED_ERRORS},
            },
        },
        f"{CPIS_R4}/Communication": {
            "post": {
                "operationId": "createCommunication",
                "summary": "A missed-appointment alert to the authorities with an active plan for the child "
                           "(B0107 or B0170)",
                "parameters": _USER_HEADERS,
                "requestBody": _body("Communication", "A completed Communication: subject by NHS number, at most "
                                                      "one contentString payload of up to 1000 characters"),
                "responses": {"201": _success("Created: the Communication as stored", "Communication", "Location"),
                              **_SECURED_ERRORS, **_BODY_ERRORS},
            },
        },
        f"{CPIS_R4}/Communication/{{id}}": {
            "parameters": [_ref("#/components/parameters/resource-id")],
            "get": {
                "operationId": "readCommunication",
                "summary": "A missed-appointment alert, for the clinician who raised it",
                "parameters": _USER_HEADERS,
                "responses": {"200": _success("The Communication", "Communication", "ETag"),
                              "404": _outcome("No such alert raised by this clinician"), **_SECURED_ERRORS},
            },
        },
        f"{CPIS_R4}/Communication/{{id}}/_history/{{vid}}": {
            "parameters": [_ref("#/components/parameters/resource-id"), _ref("#/components/parameters/vid")],
            "get": {
                "operationId": "vreadCommunication",
                "summary": "A missed-appointment alert at version 1, its only one: the create Location",
                "parameters": _USER_HEADERS,
                "responses": {"200": _success("The Communication", "Communication", "ETag"),
                              "404": _outcome("No such alert raised by this clinician, or not that version"),
                              **_SECURED_ERRORS},
            },
        },
        f"{CPIS_R4}/notifications": {
            "get": {
                "operationId": "cpisNotifications",
                "summary": "The authority's pending notifications, oldest first (accesses and alerts)",
                "security": _MUTUAL_TLS,
                "parameters": [_ref("#/components/parameters/count"), *_REQUEST_HEADERS],
                "responses": {"200": _success("A searchset Bundle: AuditEvents and Communications, the "
                                              "AuditEvents' PractitionerRoles included", "NotificationBundle"),
                              **_AUTHORITY_ERRORS},
            },
        },
        f"{CPIS_R4}/notifications/$acknowledge": {
            "post": {
                "operationId": "cpisAcknowledge",
                "summary": "Acknowledge notifications the authority has taken",
                "security": _MUTUAL_TLS,
                "parameters": _REQUEST_HEADERS,
                "requestBody": _body("Parameters", f"1 to {FEED_LIMIT} parameters named notification, each a "
                                                   "valueReference to an AuditEvent or Communication of the feed"),
                "responses": {"200": _success("What this call acknowledged", "Parameters"),
                              **_AUTHORITY_ERRORS, **_BODY_ERRORS},
            },
        },
    }


def _searchset(matches: list[str], includes: list[str]) -> dict[str, Any]:
    modes = ["match", "include"] if includes else ["match"]
    return {
        "type": "object",
        "required": ["resourceType", "type", "total"],
        "properties": {
            "resourceType": {"const": "Bundle"},
            "type": {"const": "searchset"},
            "total": {"type": "integer", "minimum": 0},
            "link": {"type": "array", "items": {"type": "object"}},
            "entry": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["fullUrl", "resource", "search"],
                "properties": {
                    "fullUrl": {"type": "string"},
                    "resource": {"type": "object", "required": ["resourceType", "id"],
                                 "properties": {"resourceType": {"enum": [*matches, *includes]}}},
                    "search": {"type": "object", "required": ["mode"], "properties": {"mode": {"enum": modes}}},
                }}},
        },
    }


def _resource(resource_type: str, *required: str, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": ["resourceType", *required],
            "properties": {"resourceType": {"const": resource_type}, "id": {"type": "string"},
                           "meta": {"type": "object"}, **properties}}


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
