"""Write FGM-IS DSTU2 response messages. Resources are built as DSTU2 JSON objects whose keys are in DSTU2
element order; the XML writer walks the same objects, so both formats come from one description. A response
message's XML is written from a template of its shape, which that writer made once from the same description
(``_xml_message``; docs/performance.md, round 13)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Final, NamedTuple, TypeAlias
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
    fields = _Fields(
        message_id, _instant(timestamp), interaction.response_event, answered,
        outcome.response_code if outcome else "ok", codes.asid_endpoint(service_asid),  # swapped: we are the source now
        codes.asid_endpoint(destination_asid) if destination_asid is not None else None,
        flag.flag_id if flag else None, flag.nhs_number if flag else None,
        flag.assessment_date.isoformat() if flag else None,
        outcome.severity if outcome else None, outcome.issue_type if outcome else None,
        outcome.code if outcome else None, outcome.display if outcome else None,
        diagnostics or None,
    )
    return orjson.dumps(_bundle(fields)) if fmt == "json" else _xml_message(fields)


class _Fields(NamedTuple):
    """What varies between response messages: every value ``_bundle`` writes that is not a constant of the guide.
    The flag's three are None together (no Flag), as are the outcome's four (success)."""

    message_id: str
    timestamp: str
    event_code: str
    answered: str
    response_code: str
    source: str
    destination: str | None
    flag_id: str | None
    nhs_number: str | None
    start: str | None
    severity: str | None
    issue_type: str | None
    spine_code: str | None
    display: str | None
    diagnostics: str | None


def _bundle(fields: _Fields) -> _Json:
    """The response message as a DSTU2 JSON object, its keys in DSTU2 element order."""
    response: _Json = {"identifier": fields.answered, "code": fields.response_code}
    if fields.spine_code is not None:
        response["details"] = {"reference": f"OperationOutcome/{fields.message_id}"}
    header: _Json = {
        "resourceType": "MessageHeader",
        "id": fields.message_id,
        "meta": {"profile": [codes.PROFILE_RESPONSE_HEADER]},
        "timestamp": fields.timestamp,
        "event": {"system": codes.MESSAGE_EVENT_SYSTEM, "code": fields.event_code},
        "response": response,
        "source": {"endpoint": fields.source},
    }
    if fields.destination is not None:
        header["destination"] = [{"endpoint": fields.destination}]
    if fields.flag_id is not None:
        header["data"] = [{"reference": f"Flag/{fields.flag_id}"}]

    entries: list[_Json] = [{"resource": header}]
    if fields.flag_id is not None:
        entries.append({"resource": _flag(fields)})
    if fields.spine_code is not None:
        entries.append({"resource": _operation_outcome(fields)})
    return {
        "resourceType": "Bundle",
        "id": fields.message_id,
        "meta": {"profile": [codes.PROFILE_MESSAGE_BUNDLE]},
        "type": "message",
        "entry": entries,
    }


def _instant(timestamp: datetime) -> str:
    if timestamp.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    return timestamp.isoformat(timespec="milliseconds" if timestamp.microsecond else "seconds")


_PATIENT_ID: Final = "patient"  # contained ids are local to the Flag, so a fixed one is enough


def _flag(fields: _Fields) -> _Json:
    # As query-v2-response-found.xml: spine-ris-flag-1-0 containing a spine-ris-patient-1-0.
    patient: _Json = {
        "resourceType": "Patient",
        "id": _PATIENT_ID,
        "meta": {"profile": [codes.PROFILE_RIS_PATIENT]},
        "identifier": [{"system": codes.NHS_NUMBER_SYSTEM, "value": fields.nhs_number}],
    }
    return {
        "resourceType": "Flag",
        "id": fields.flag_id,
        "meta": {"profile": [codes.PROFILE_RIS_FLAG]},
        "contained": [patient],
        "status": "active",
        "period": {"start": fields.start},
        "subject": {"reference": f"#{_PATIENT_ID}"},
        "code": {"coding": [{"system": codes.RISK_INDICATOR_SYSTEM, "code": codes.RISK_INDICATOR_FGM}]},
    }


def _operation_outcome(fields: _Fields) -> _Json:
    issue: _Json = {
        "severity": fields.severity,
        "code": fields.issue_type,
        "details": {
            "coding": [
                {"system": codes.SPINE_RESPONSE_CODE_SYSTEM, "code": fields.spine_code, "display": fields.display}
            ]
        },
    }
    if fields.diagnostics is not None:
        issue["diagnostics"] = fields.diagnostics
    return {
        "resourceType": "OperationOutcome",
        "id": fields.message_id,
        "meta": {"profile": [codes.PROFILE_OPERATION_OUTCOME]},
        "issue": [issue],
    }


# Attribute values as libxml2 writes them: the markup characters and the whitespace an attribute would
# otherwise normalise away as character references, everything else as UTF-8.
_ATTRIBUTE_ENTITIES: Final = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
_XML_DECLARATION: Final = "<?xml version='1.0' encoding='UTF-8'?>\n"
# A value that needs either: one of the characters escape() rewrites (&, <, > and the above), or one XML cannot carry.
_TO_CHECK: Final = re.compile("[&<>" + "".join(_ATTRIBUTE_ENTITIES) + "]|" + _CONTROL_CHARACTERS.pattern)


def _xml_message(fields: _Fields) -> bytes:
    """The response message as DSTU2 XML: ``_xml_bytes`` of ``_bundle(fields)``, written from a template of the
    message's shape (which of the optional parts it has), made once by ``_xml_bytes`` itself from a bundle whose
    varying values are numbered slots, so the message is still described once, in ``_bundle``."""
    shape = tuple(value is None for value in fields)  # which values are absent: all a template depends on
    template = _TEMPLATES.get(shape) or _template(shape)
    values: Sequence[str | None] = fields
    if _TO_CHECK.search("".join(filter(None, fields))):  # rare: one search for all the values
        values = [None if value is None else _escaped(value) for value in fields]
    return template.format(*values).encode()


# Templates by shape (16 at most: the Flag's values are absent together, and the outcome's), made on first use:
# str.format strings with {i} for field i.
_TEMPLATES: Final[dict[tuple[bool, ...], str]] = {}
# A slot as the template is made: private-use characters, which XML carries and no escape rewrites.
_SLOT: Final = "\ue000{}\ue001"
_SLOTS: Final = re.compile("\ue000([0-9]+)\ue001")


def _template(shape: tuple[bool, ...]) -> str:
    """The template of a shape, made from the shape alone: a slot for every value it has, None for every other."""
    slots = _Fields._make(None if absent else _SLOT.format(i) for i, absent in enumerate(shape))
    text = _xml_bytes(_bundle(slots)).decode().replace("{", "{{").replace("}", "}}")
    template = _TEMPLATES[shape] = _SLOTS.sub(r"{\1}", text)
    return template


def _escaped(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("a DSTU2 XML value holds characters XML cannot carry")
    return escape(value, _ATTRIBUTE_ENTITIES)


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
                    item = _escaped(item)
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
