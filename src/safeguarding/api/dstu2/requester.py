"""The requesting side of FGM-IS DSTU2 messaging: write a query request, read the query response.

Used by the Spine Mini Service Provider towards the national service (and by tests). Reading reuses
the hardened loader of ``tree.py``, so a national response gets the same protections as a client request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from ...domain import nhs_number
from . import codes
from .codes import RESPONSE_MESSAGE_VALIDATION_ERROR, SPINE_CODES, SpineCode
from .messages import FoundFlag, Organization, Practitioner
from .tree import (
    MessageError,
    Node,
    _Bundle,
    _child,
    _children,
    _contained,
    _date,
    _Invalid,
    _load,
    _optional_child,
    _optional_text,
    _resolve_contained,
    _text,
)
from .writer import _instant, _xml_bytes

PROFILE_REQUEST_HEADER: Final = "http://fhir.nhs.net/StructureDefinition/spine-request-messageheader-2-0"
PROFILE_RIS_PARAMETERS: Final = "http://fhir.nhs.net/StructureDefinition/spine-ris-parameters-1-0"
PROFILE_PRACTITIONER: Final = "http://fhir.nhs.net/StructureDefinition/spine-practitioner-2-0"
PROFILE_ORGANIZATION: Final = "http://fhir.nhs.net/StructureDefinition/spine-organization-1-0"


def render_query_request(
    *,
    message_id: str,
    timestamp: datetime,
    source_asid: str,
    destination_asid: str,
    practitioner: Practitioner,
    organization: Organization | None,
    nhs_number: str,
) -> bytes:
    """A QRY-FGM-QueryRequest-2-0 message (XML), shaped like the guide's example."""
    practitioner_id, parameters_id, organization_id = f"{message_id}-p", f"{message_id}-q", f"{message_id}-o"
    identifiers = [
        {"system": system, "value": value}
        for system, value in (
            (codes.SDS_USER_ID_SYSTEM, practitioner.sds_user_id),
            (codes.SDS_ROLE_PROFILE_ID_SYSTEM, practitioner.sds_role_profile_id),
            (codes.LOCAL_IDENTIFIER_SYSTEM, practitioner.local_user_id),
        )
        if value
    ]
    practitioner_resource: dict[str, object] = {
        "resourceType": "Practitioner", "id": practitioner_id, "meta": {"profile": [PROFILE_PRACTITIONER]},
        "identifier": identifiers,
    }
    entries: list[dict[str, object]] = [
        {"resource": {
            "resourceType": "MessageHeader", "id": message_id, "meta": {"profile": [PROFILE_REQUEST_HEADER]},
            "timestamp": _instant(timestamp),
            "event": {"system": codes.MESSAGE_EVENT_SYSTEM, "code": codes.EVENT_QUERY_REQUEST},
            "source": {"endpoint": codes.asid_endpoint(source_asid)},
            "destination": [{"endpoint": codes.asid_endpoint(destination_asid)}],
            "author": {"reference": f"Practitioner/{practitioner_id}"},
            "data": {"reference": f"Parameters/{parameters_id}"},
        }},
        {"resource": {
            "resourceType": "Parameters", "id": parameters_id, "meta": {"profile": [PROFILE_RIS_PARAMETERS]},
            "parameter": [
                {"name": "RiskIndicator", "valueString": codes.RISK_INDICATOR_FGM},
                {"name": "NHSNumber", "valueString": nhs_number},
            ],
        }},
        {"resource": practitioner_resource},
    ]
    if organization is not None:
        practitioner_resource["practitionerRole"] = [
            {"managingOrganization": {"reference": f"Organization/{organization_id}"}}
        ]
        org: dict[str, object] = {
            "resourceType": "Organization", "id": organization_id, "meta": {"profile": [PROFILE_ORGANIZATION]},
            "identifier": [{"system": codes.ODS_ORGANIZATION_CODE_SYSTEM, "value": organization.ods_code}],
        }
        if organization.name:
            org["name"] = organization.name
        entries.append({"resource": org})
    bundle: dict[str, object] = {
        "resourceType": "Bundle", "id": message_id, "meta": {"profile": [codes.PROFILE_MESSAGE_BUNDLE]},
        "type": "message", "entry": entries,
    }
    return _xml_bytes(bundle)


@dataclass(frozen=True)
class QueryAnswer:
    """What a query response says, checked: which message it answers, and the Flag or the outcome."""

    answered_message_id: str
    flag: FoundFlag | None
    outcome: SpineCode | None
    diagnostics: str | None


def read_query_response(body: bytes, media_type: str) -> QueryAnswer:
    """Read a national query response. Anything unusable raises ``MessageError`` with
    RESPONSE_MESSAGE_VALIDATION_ERROR (the SMSP's row for a response it cannot use)."""
    try:
        bundle = _Bundle(_load(body, media_type))
        header = bundle.header
        event = _child(header, "event", "MessageHeader.event")
        if _text(event, "code", "MessageHeader.event.code") != codes.EVENT_QUERY_RESPONSE:
            raise _Invalid(RESPONSE_MESSAGE_VALIDATION_ERROR, "The response is not a query response")
        response = _child(header, "response", "MessageHeader.response")
        answered = _text(response, "identifier", "MessageHeader.response.identifier")
        flags, outcomes = bundle.of_type("Flag"), bundle.of_type("OperationOutcome")
        if len(flags) > 1 or len(outcomes) > 1 or not (flags or outcomes):
            raise _Invalid(RESPONSE_MESSAGE_VALIDATION_ERROR, "The response holds neither one Flag nor one outcome")
        flag = _found_flag(flags[0]) if flags else None
        outcome, diagnostics = _outcome(outcomes[0]) if outcomes else (None, None)
        if flag is not None and outcome is not None and outcome.http_status >= 300:
            raise _Invalid(RESPONSE_MESSAGE_VALIDATION_ERROR, "The response holds a Flag and an error")
        return QueryAnswer(answered, flag, outcome, diagnostics)
    except _Invalid as exc:
        raise MessageError(RESPONSE_MESSAGE_VALIDATION_ERROR,
                           f"Unusable national response: {exc.diagnostics}") from None


def _found_flag(flag: Node) -> FoundFlag:
    if _text(flag, "status", "Flag.status") != "active":
        raise _Invalid(RESPONSE_MESSAGE_VALIDATION_ERROR, "Flag.status is not active")
    subject = _text(_child(flag, "subject", "Flag.subject"), "reference", "Flag.subject.reference")
    patient = _resolve_contained(_contained(flag), subject, "Patient", "Flag.subject")
    nhs_numbers = [
        _text(identifier, "value", "Patient.identifier.value")
        for identifier in _children(patient, "identifier", "Patient.identifier")
        if nhs_number.is_system(_optional_text(identifier, "system", "Patient.identifier.system"))
    ]
    if len(nhs_numbers) != 1:
        raise _Invalid(RESPONSE_MESSAGE_VALIDATION_ERROR, "The Flag's Patient has no single NHS number")
    start: date = _date(_text(_child(flag, "period", "Flag.period"), "start", "Flag.period.start"),
                        "Flag.period.start")
    return FoundFlag(flag_id=_text(flag, "id", "Flag.id"), nhs_number=nhs_numbers[0], assessment_date=start)


def _outcome(outcome: Node) -> tuple[SpineCode, str | None]:
    issues = _children(outcome, "issue", "OperationOutcome.issue")
    if len(issues) != 1:
        raise _Invalid(RESPONSE_MESSAGE_VALIDATION_ERROR, "The OperationOutcome has no single issue")
    details = _optional_child(issues[0], "details", "OperationOutcome.issue.details")
    codings = _children(details, "coding", "OperationOutcome.issue.details.coding") if details else []
    known = [SPINE_CODES.get(_optional_text(c, "code", "coding.code") or "") for c in codings]
    found = [code for code in known if code is not None]
    if len(found) != 1:
        raise _Invalid(RESPONSE_MESSAGE_VALIDATION_ERROR, "The OperationOutcome has no known response code")
    return found[0], _optional_text(issues[0], "diagnostics", "OperationOutcome.issue.diagnostics")
