"""The FGM-IS DSTU2 messaging API in the OpenAPI description: three POSTs over mutual TLS, each with its
SOAPAction, the NHS guide's example message as the request example, and the Spine error rows.

A FHIR DSTU2 message is XML (or JSON) that JSON Schema cannot usefully describe: bodies are strings
here, and the examples are the messages themselves (``api/dstu2/examples``), ready for the sandbox.
"""

from __future__ import annotations

from typing import Any

from .dstu2.example_messages import ACTIONS as DSTU2_ACTIONS
from .dstu2.example_messages import template

# The NHS guide's example ASIDs: 047192794544 sends, 990101234567 is the service (the sandbox uses them too).
EXAMPLE_SOURCE_ASID, EXAMPLE_SERVICE_ASID = "047192794544", "990101234567"

DSTU2_BASE = "/fhir/fgm"
REQUEST_TYPES = ("text/xml", "application/xml", "application/xml+fhir", "application/fhir+xml",
                 "application/json", "application/json+fhir", "application/fhir+json")
_ANSWER = {"application/xml+fhir": {"schema": {"type": "string"}},
           "application/json+fhir": {"schema": {"type": "string"}}}

_ROWS = {
    "query": {
        "200": "The query response message with the active Flag",
        "404": "NO_RECORD_FOUND: no active indicator (or the child is 18 or over)",
        "400": "INVALID_NHS_NUMBER (not valid, or not verified), INVALID_PARAMETER (parameters, path or "
               "SOAPAction), MESSAGE_NOT_WELL_FORMED",
    },
    "create": {
        "201": "The create response message",
        "400": "INVALID_NHS_NUMBER, PATIENT_OVER_18, INVALID_PARAMETER, MESSAGE_NOT_WELL_FORMED",
        "422": "FLAG_ALREADY_SET: the child already has an active indicator",
    },
    "delete": {
        "200": "The delete response message",
        "404": "NO_RECORD_FOUND: no active indicator to delete",
        "400": "INVALID_NHS_NUMBER, INVALID_PARAMETER (e.g. FGMDeleteReason), MESSAGE_NOT_WELL_FORMED",
    },
}
_EXAMPLE_NUMBERS = {"query": "9990000018", "create": "9990000026", "delete": "9990000107"}
_SUMMARIES = {
    "query": "FGM-IS query (QRY-FGM-QueryRequest-2-0): the child's active indicator",
    "create": "FGM-IS create: record an FGM indicator",
    "delete": "FGM-IS delete: remove the child's active indicator",
}


def example_message(kind: str) -> str:
    """The NHS guide's example message for ``kind``, between the guide's example ASIDs, for a sandbox child."""
    return (template(kind).replace("{{nhs_number}}", _EXAMPLE_NUMBERS[kind])
            .replace("{{source_asid}}", EXAMPLE_SOURCE_ASID).replace("{{service_asid}}", EXAMPLE_SERVICE_ASID)
            .replace("{{delete_reason}}", "0")
            .replace("{{$guid}}", "6b1f5c3e-8d62-4f1a-9b7a-2f4de0c4a1b2")
            .replace("{{$isoTimestamp}}", "2026-12-01T09:30:00.000Z")
            .replace("{{assessment_date}}", "2026-11-28").replace("{{birth_date}}", "2014-05-01"))


def dstu2_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for kind, action in DSTU2_ACTIONS.items():
        responses: dict[str, Any] = {
            status: {"description": text, "content": _ANSWER} for status, text in _ROWS[kind].items()}
        responses["401"] = {"description": "AUTHOR_CREDENTIALS_ERROR: no usable Practitioner identity",
                            "content": _ANSWER}
        responses["403"] = {"description": "ASID_CHECK_FAILED: no, revoked or unregistered client certificate; "
                                           "wrong source or destination ASID; interaction not registered",
                            "content": _ANSWER}
        responses["500"] = {"description": "COULD_NOT_CONNECT_TO_SPINE (the store or demographics unavailable), "
                                           "or GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE with a "
                                           "correlation id", "content": _ANSWER}
        paths[f"{DSTU2_BASE}/{kind}"] = {"post": {
            "operationId": f"dstu2{kind.capitalize()}",
            "summary": _SUMMARIES[kind],
            "description": "FHIR DSTU2 messaging (docs/api-dstu2.md). The caller is the system of the verified "
                           "client certificate; the message's source ASID must be its ASID and the destination "
                           "the service's. Every answer is a response message whose OperationOutcome carries "
                           "the Spine code.",
            "tags": ["FGM-IS DSTU2 messaging"],
            "security": [{"mutualTLS": []}],
            "parameters": [
                {"name": "SOAPAction", "in": "header", "required": False,
                 "description": "The interaction's event code, quoted (a different one: 400 INVALID_PARAMETER)",
                 "schema": {"type": "string", "enum": [f'"{action}"', action]}, "example": f'"{action}"'},
                {"$ref": "#/components/parameters/X-Request-ID"},
            ],
            "requestBody": {"required": True, "content": {
                media: ({"schema": {"type": "string"},
                         "examples": {"nhs-guide": {"summary": "The NHS guide's example, for the sandbox",
                                                    "value": example_message(kind)}}}
                        if media == "text/xml" else {"schema": {"type": "string"}})
                for media in REQUEST_TYPES}},
            "responses": responses,
        }}
    return paths
