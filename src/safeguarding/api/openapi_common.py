"""The pieces every part of the OpenAPI description is built from (``openapi.py`` assembles the document):
references, bodies, the pipeline's common error responses, headers, searchset and resource schemas."""

from __future__ import annotations

from typing import Any

from ..domain import nhs_number
from .steps import TRACE_ID_PATTERN

FGM_R4 = "/fgm/FHIR/R4"
CPIS_R4 = "/cpis/FHIR/R4"
FHIR_MEDIA_TYPES = ("application/fhir+json", "application/fhir+xml")
_TRACE_ID = TRACE_ID_PATTERN


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
