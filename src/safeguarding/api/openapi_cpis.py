"""The CP-IS FHIR R4 REST API in the OpenAPI description (``openapi.py`` assembles the document)."""

from __future__ import annotations

from typing import Any

from ..services.cpis import FEED_LIMIT
from .openapi_common import (
    _BODY_ERRORS,
    _COMMON_ERRORS,
    _REQUEST_HEADERS,
    _SECURED_ERRORS,
    _USER_HEADERS,
    CPIS_R4,
    _body,
    _outcome,
    _ref,
    _success,
)

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
