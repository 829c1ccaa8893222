"""Write FGM-IS DSTU2 response messages. Resources are built as DSTU2 JSON objects whose keys are in DSTU2
element order; the XML writer walks the same objects, so both formats come from one description."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Final, TypeAlias
from xml.sax.saxutils import escape

import orjson

from safeguarding.api.dstu2 import codes
from safeguarding.api.dstu2.codes import (
    SpineCode,
)
from safeguarding.api.dstu2.media import Format
from safeguarding.api.dstu2.messages import (
    FoundFlag,
    Interaction,
    RequestHeader,
)
from safeguarding.api.dstu2.tree import (
    _CONTROL_CHARACTERS,
)

_Json: TypeAlias = "dict[str, object]"

# Namespace for the uuid5 used when the request header is unknown (see render_response).
_UNKNOWN_REQUEST_NAMESPACE: Final = uuid.UUID("0b1e5c1e-8f57-4c59-9d2c-6a2d3f1f0e51")


def response_status(interaction: Interaction, outcome: SpineCode | None) -> int:
    """HTTP status for a response: the outcome's row, else the interaction's success status."""
    return outcome.http_status if outcome is not None else interaction.success_status


def render_response(
    interaction: Interaction,
    request_header: RequestHeader | None,
    *,
    outcome: SpineCode | None,
    diagnostics: str | None = None,
    flag: FoundFlag | None = None,
    service_asid: str,
    message_id: str,
    timestamp: datetime,
    fmt: Format,
    requester_asid: str | None = None,
) -> bytes:
    """Render the response Bundle for an interaction.

    - ``outcome`` None means success: an empty create/delete answer, or a query that found ``flag``.
      Otherwise an OperationOutcome with that row (and ``diagnostics``) follows the header; a
      ``flag`` may only accompany a non-error outcome (e.g. the SMSP 203 warning).
    - ``message_id`` is the id of the Bundle, its MessageHeader and the OperationOutcome (FHIR ids
      are unique per resource type, and one id makes the response easy to find in the audit).
    - ``timestamp`` must be timezone-aware (a FHIR instant).

    When ``request_header`` is None (the request could not be read that far):
    ``response.identifier``, 1..1 in DSTU2, is a fresh UUID derived from ``message_id`` - it matches
    no message the client sent, says plainly that the request was not identified, and keeps the
    function deterministic. ``destination`` is ``requester_asid`` when the caller knows it (e.g. from
    the client certificate), otherwise omitted rather than invented.
    """
    if flag is not None and interaction is not Interaction.QUERY:
        raise ValueError("only a query response carries a Flag")
    if flag is not None and outcome is not None and outcome.http_status >= 300:
        raise ValueError("an error response cannot carry a Flag")
    if interaction is Interaction.QUERY and flag is None and outcome is None:
        raise ValueError("a query response needs a Flag or an outcome")
    if diagnostics is not None and outcome is None:
        raise ValueError("diagnostics need an outcome")

    if request_header is not None:
        answered = request_header.message_id
        destination_asid: str | None = request_header.source_asid
    else:
        answered = str(uuid.uuid5(_UNKNOWN_REQUEST_NAMESPACE, message_id))
        destination_asid = requester_asid

    response: _Json = {"identifier": answered, "code": outcome.response_code if outcome else "ok"}
    if outcome is not None:
        response["details"] = {"reference": f"OperationOutcome/{message_id}"}
    header: _Json = {
        "resourceType": "MessageHeader",
        "id": message_id,
        "meta": {"profile": [codes.PROFILE_RESPONSE_HEADER]},
        "timestamp": _instant(timestamp),
        "event": {"system": codes.MESSAGE_EVENT_SYSTEM, "code": interaction.response_event},
        "response": response,
        "source": {"endpoint": codes.asid_endpoint(service_asid)},  # swapped: we are the source now
    }
    if destination_asid is not None:
        header["destination"] = [{"endpoint": codes.asid_endpoint(destination_asid)}]
    if flag is not None:
        header["data"] = [{"reference": f"Flag/{flag.flag_id}"}]

    entries: list[_Json] = [{"resource": header}]
    if flag is not None:
        entries.append({"resource": _flag(flag)})
    if outcome is not None:
        entries.append({"resource": _operation_outcome(message_id, outcome, diagnostics)})
    bundle: _Json = {
        "resourceType": "Bundle",
        "id": message_id,
        "meta": {"profile": [codes.PROFILE_MESSAGE_BUNDLE]},
        "type": "message",
        "entry": entries,
    }
    return _json_or_xml(bundle, fmt)


def _json_or_xml(resource: _Json, fmt: Format) -> bytes:
    return orjson.dumps(resource) if fmt == "json" else _xml_bytes(resource)


def _instant(timestamp: datetime) -> str:
    if timestamp.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    return timestamp.isoformat(timespec="milliseconds" if timestamp.microsecond else "seconds")


_PATIENT_ID: Final = "patient"  # contained ids are local to the Flag, so a fixed one is enough


def _flag(flag: FoundFlag) -> _Json:
    # As query-v2-response-found.xml: spine-ris-flag-1-0 containing a spine-ris-patient-1-0.
    patient: _Json = {
        "resourceType": "Patient",
        "id": _PATIENT_ID,
        "meta": {"profile": [codes.PROFILE_RIS_PATIENT]},
        "identifier": [{"system": codes.NHS_NUMBER_SYSTEM, "value": flag.nhs_number}],
    }
    return {
        "resourceType": "Flag",
        "id": flag.flag_id,
        "meta": {"profile": [codes.PROFILE_RIS_FLAG]},
        "contained": [patient],
        "status": "active",
        "period": {"start": flag.assessment_date.isoformat()},
        "subject": {"reference": f"#{_PATIENT_ID}"},
        "code": {"coding": [{"system": codes.RISK_INDICATOR_SYSTEM, "code": codes.RISK_INDICATOR_FGM}]},
    }


def _operation_outcome(outcome_id: str, outcome: SpineCode, diagnostics: str | None) -> _Json:
    issue: _Json = {
        "severity": outcome.severity,
        "code": outcome.issue_type,
        "details": {
            "coding": [
                {"system": codes.SPINE_RESPONSE_CODE_SYSTEM, "code": outcome.code, "display": outcome.display}
            ]
        },
    }
    if diagnostics:
        issue["diagnostics"] = diagnostics
    return {
        "resourceType": "OperationOutcome",
        "id": outcome_id,
        "meta": {"profile": [codes.PROFILE_OPERATION_OUTCOME]},
        "issue": [issue],
    }


# Attribute values as libxml2 writes them: the markup characters and the whitespace an attribute would
# otherwise normalise away as character references, everything else as UTF-8.
_ATTRIBUTE_ENTITIES: Final = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
_XML_DECLARATION: Final = "<?xml version='1.0' encoding='UTF-8'?>\n"
# A value that needs either: one of the characters escape() rewrites (&, <, > and the above), or one XML cannot carry.
_TO_CHECK: Final = re.compile("[&<>" + "".join(_ATTRIBUTE_ENTITIES) + "]|" + _CONTROL_CHARACTERS.pattern)


def _xml_bytes(resource: _Json) -> bytes:
    """DSTU2 XML of a resource, written as text: the same bytes as building the tree with lxml and
    serialising it (tests/unit/dstu2 compares the two), in a fraction of the time."""
    parts: list[str] = [_XML_DECLARATION]
    _xml_element(parts, str(resource["resourceType"]), resource, f' xmlns="{codes.FHIR_NS}"')
    return "".join(parts).encode()


def _xml_element(parts: list[str], name: str, obj: _Json, attributes: str = "") -> None:
    """``<name>`` holding ``obj``: primitives become value attributes, arrays repeat the element, and
    resource and contained wrap the resource in an element named by its type."""
    start = len(parts)
    for key, value in obj.items():
        if key == "resourceType":
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                if _TO_CHECK.search(item):  # rare: most values are written as they are
                    if _CONTROL_CHARACTERS.search(item):
                        raise ValueError("a DSTU2 XML value holds characters XML cannot carry")
                    item = escape(item, _ATTRIBUTE_ENTITIES)
                parts.append(f'<{key} value="{item}"/>')
            elif isinstance(item, dict) and "resourceType" in item:
                parts.append(f"<{key}>")
                _xml_element(parts, str(item["resourceType"]), item)
                parts.append(f"</{key}>")
            elif isinstance(item, dict):
                _xml_element(parts, key, item)
            else:
                raise TypeError(f"cannot write {type(item).__name__} as DSTU2 XML")
    if len(parts) == start:
        parts.append(f"<{name}{attributes}/>")
    else:
        parts.insert(start, f"<{name}{attributes}>")
        parts.append(f"</{name}>")
