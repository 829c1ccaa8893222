"""Read FGM-IS DSTU2 request messages (XML and JSON) into the messages of ``messages.py``.

Validation is by hand, on the fields the business needs: the published profiles contradict themselves
and would reject the official examples. Diagnostics never contain values from the message (NHS numbers,
names, ids): they can end up in logs, so they only say, in general words, which element is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final, TypeAlias

from safeguarding.api.dstu2 import codes
from safeguarding.api.dstu2.codes import (
    AUTHOR_CREDENTIALS_ERROR,
    INVALID_NHS_NUMBER,
    INVALID_PARAMETER,
    MESSAGE_NOT_WELL_FORMED,
    same_canonical,
)
from safeguarding.api.dstu2.messages import (
    CreateRequest,
    DeleteRequest,
    Interaction,
    Organization,
    Practitioner,
    QueryRequest,
    Request,
    RequestHeader,
)
from safeguarding.api.dstu2.tree import (
    _ASID_ENDPOINT,
    _INSTANT,
    MessageError,
    Node,
    Value,
    _Bundle,
    _child,
    _children,
    _contained,
    _date,
    _Invalid,
    _load,
    _optional,
    _optional_child,
    _optional_text,
    _resolve_contained,
    _text,
)
from safeguarding.domain import nhs_number

# =============================================================================================
# Requests
# =============================================================================================


def parse_request(body: bytes, media_type: str) -> Request:
    """Parse and check an FGM-IS DSTU2 request message.

    ``media_type`` is lowercased, without parameters (see ``XML_MEDIA_TYPES``/``JSON_MEDIA_TYPES``).
    The interaction comes from ``MessageHeader.event.code``; the caller must still check it
    against the path it was posted to. The body size must be limited by the caller.

    Raises:
        MessageError: with the spine-response-code-2-0 row to answer with and, once it has been
            read, the request's header.
    """
    header: RequestHeader | None = None
    try:
        bundle = _Bundle(_load(body, media_type))
        header = _parse_header(bundle.header)
        interaction = _interaction(bundle.header)
        practitioner_node = bundle.resolve(header.author_reference, "Practitioner", "MessageHeader.author.reference")
        practitioner = _parse_practitioner(practitioner_node, bundle.header, interaction)
        organization = _parse_organization(bundle, practitioner_node)
        return _PAYLOAD_PARSERS[interaction](bundle, header, practitioner, organization)
    except _Invalid as exc:
        raise MessageError(exc.spine_code, exc.diagnostics, header) from None


def _parse_header(node: Node) -> RequestHeader:
    message_id = _text(node, "id", "MessageHeader.id")
    raw_timestamp = _text(node, "timestamp", "MessageHeader.timestamp")
    if not _INSTANT.fullmatch(raw_timestamp):
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "MessageHeader.timestamp is not a FHIR instant")
    try:
        timestamp = datetime.fromisoformat(raw_timestamp)
    except ValueError:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "MessageHeader.timestamp is not a FHIR instant") from None
    event = _child(node, "event", "MessageHeader.event")
    event_code = _text(event, "code", "MessageHeader.event.code")
    source = _child(node, "source", "MessageHeader.source")
    destination = _child(node, "destination", "MessageHeader.destination")
    author = _child(node, "author", "MessageHeader.author")
    return RequestHeader(
        message_id=message_id,
        timestamp=timestamp,
        event_code=event_code,
        source_asid=_asid(source, "MessageHeader.source.endpoint"),
        destination_asid=_asid(destination, "MessageHeader.destination.endpoint"),
        author_reference=_text(author, "reference", "MessageHeader.author.reference"),
    )


def _asid(node: Node, path: str) -> str:
    match = _ASID_ENDPOINT.fullmatch(_text(node, "endpoint", path))
    if match is None:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, f"{path} is not an ASID endpoint (urn:nhs:addressing:asid:...)")
    return match["asid"]


def _interaction(header: Node) -> Interaction:
    # Checked after the header is read, so the error response can still answer this message.
    event = _child(header, "event", "MessageHeader.event")
    system = _text(event, "system", "MessageHeader.event.system")
    interaction = Interaction.for_request_event(_text(event, "code", "MessageHeader.event.code"))
    if not same_canonical(system, codes.MESSAGE_EVENT_SYSTEM) or interaction is None:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "MessageHeader.event is not an FGM-IS request event")
    return interaction


def _identifiers(node: Node, path: str, systems: tuple[str, ...]) -> dict[str, str]:
    """Identifier values by (canonical) system, for the given systems; other systems are ignored."""
    found: dict[str, str] = {}
    for identifier in _children(node, "identifier", path):
        system = _optional_text(identifier, "system", f"{path}.system")
        value = _optional_text(identifier, "value", f"{path}.value")
        if system is None or value is None:
            continue
        key = codes.canonical(system)
        if key not in systems:
            continue
        if key in found:
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, f"{path} repeats an identifier system")
        found[key] = value
    return found


def _nhs_number_identifier(patient: Node) -> str:
    """The Patient's NHS number: its one identifier whose system names the NHS number by the rule every API
    shares (``nhs_number.is_system``: a published form in any case, or no system)."""
    numbers = []
    for identifier in _children(patient, "identifier", "Patient.identifier"):
        system = _optional_text(identifier, "system", "Patient.identifier.system")
        value = _optional_text(identifier, "value", "Patient.identifier.value")
        if value is not None and nhs_number.is_system(system):
            numbers.append(value)
    if not numbers:
        raise _Invalid(INVALID_PARAMETER, "The Patient has no NHS number identifier")
    if len(numbers) > 1:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "Patient.identifier repeats an identifier system")
    return numbers[0]


_PRACTITIONER_SYSTEMS: Final = (
    codes.SDS_USER_ID_SYSTEM,
    codes.SDS_ROLE_PROFILE_ID_SYSTEM,
    codes.LOCAL_IDENTIFIER_SYSTEM,
)


def _parse_practitioner(node: Node, header: Node, interaction: Interaction) -> Practitioner:
    ids = _identifiers(node, "Practitioner.identifier", _PRACTITIONER_SYSTEMS)
    practitioner = Practitioner(
        sds_user_id=ids.get(codes.SDS_USER_ID_SYSTEM),
        sds_role_profile_id=ids.get(codes.SDS_ROLE_PROFILE_ID_SYSTEM),
        local_user_id=ids.get(codes.LOCAL_IDENTIFIER_SYSTEM),
        name=_human_name(node) or _author_display(header),
    )
    # Create and delete use spine-practitioner-1-0 (SDS user and role profile ids 1..1); the query
    # uses 2-0, where a local id may stand in for the smartcard ids. With no identity at all there
    # is nobody to audit: SMSP-AUDIT-005 (DIGEST §4.4) answers AUTHOR_CREDENTIALS_ERROR.
    if interaction is Interaction.QUERY:
        if not (practitioner.sds_user_id or practitioner.local_user_id):
            raise _Invalid(AUTHOR_CREDENTIALS_ERROR, "The author has neither an SDS user id nor a local identifier")
    elif not (practitioner.sds_user_id and practitioner.sds_role_profile_id):
        raise _Invalid(AUTHOR_CREDENTIALS_ERROR, "The author lacks an SDS user id or SDS role profile id")
    return practitioner


def _human_name(practitioner: Node) -> str | None:
    # Practitioner.name is 0..0 in the profiles, yet the v1 example sends one (DIGEST §1.9).
    names = _children(practitioner, "name", "Practitioner.name")
    if not names:
        return None
    name = names[0]
    if text := _optional_text(name, "text", "Practitioner.name.text"):
        return text
    parts = [
        part
        for element in ("prefix", "given", "family")  # each 0..* in DSTU2 HumanName
        for part in name.get(element, [])
        if isinstance(part, str) and part
    ]
    return " ".join(parts) or None


def _author_display(header: Node) -> str | None:
    author = _child(header, "author", "MessageHeader.author")
    return _optional_text(author, "display", "MessageHeader.author.display")


def _parse_organization(bundle: _Bundle, practitioner_node: Node) -> Organization | None:
    """The requesting organisation: the one the Practitioner's role names, else the only one sent."""
    role = _optional_child(practitioner_node, "practitionerRole", "Practitioner.practitionerRole")
    managing: Node | None = None
    if role is not None:
        managing = _optional_child(role, "managingOrganization", "Practitioner.practitionerRole.managingOrganization")
    if managing is not None:
        reference = _text(managing, "reference", "Practitioner.practitionerRole.managingOrganization.reference")
        node = bundle.resolve(reference, "Organization", "Practitioner.practitionerRole.managingOrganization")
    else:
        organizations = bundle.of_type("Organization")
        if not organizations:
            return None  # the guide makes the Organization optional (MAY)
        if len(organizations) > 1:
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The Bundle holds more than one Organization")
        node = organizations[0]
    ods_code = _identifiers(node, "Organization.identifier", (codes.ODS_ORGANIZATION_CODE_SYSTEM,)).get(
        codes.ODS_ORGANIZATION_CODE_SYSTEM
    )
    if ods_code is None:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The requesting Organization has no ODS organisation code")
    return Organization(ods_code=ods_code, name=_optional_text(node, "name", "Organization.name"))


def _payload(bundle: _Bundle, resource_type: str) -> Node:
    """The one resource the message is about (Parameters or Flag), checked against MessageHeader.data."""
    candidates = bundle.of_type(resource_type)
    if len(candidates) != 1:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, f"The Bundle must hold exactly one {resource_type}")
    data = _optional_child(bundle.header, "data", "MessageHeader.data")
    if data is not None:
        reference = _text(data, "reference", "MessageHeader.data.reference")
        if bundle.resolve(reference, resource_type, "MessageHeader.data") is not candidates[0]:
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, f"MessageHeader.data does not refer to the {resource_type}")
    return candidates[0]


def _parameters(bundle: _Bundle, names: tuple[str, ...]) -> dict[str, Node]:
    """The Parameters' parameters by name: exactly the given names, once each (closed slicing)."""
    found: dict[str, Node] = {}
    for parameter in _children(_payload(bundle, "Parameters"), "parameter", "Parameters.parameter"):
        name = _optional_text(parameter, "name", "Parameters.parameter.name", INVALID_PARAMETER)
        if name not in names:
            raise _Invalid(INVALID_PARAMETER, "Parameters holds a parameter this interaction does not define")
        if name in found:
            raise _Invalid(INVALID_PARAMETER, f"Parameter {name} is repeated")
        if "resource" in parameter or "part" in parameter:
            raise _Invalid(INVALID_PARAMETER, f"Parameter {name} may only carry a value")
        found[name] = parameter
    for name in names:
        if name not in found:
            raise _Invalid(INVALID_PARAMETER, f"Parameter {name} is missing")
    return found


def _value(parameter: Node, name: str, value_type: str) -> Value:
    """The parameter's value[x], which must be of the given type (e.g. "String")."""
    value_keys = [key for key in parameter if key.startswith("value")]
    if value_keys != ["value" + value_type]:
        raise _Invalid(INVALID_PARAMETER, f"Parameter {name} must have one value{value_type}")
    value = _optional(parameter, "value" + value_type, f"Parameter {name}", INVALID_PARAMETER)
    if value is None:
        raise _Invalid(INVALID_PARAMETER, f"Parameter {name} has no value")
    return value


def _string_parameter(parameter: Node, name: str) -> str:
    value = _value(parameter, name, "String")
    if not isinstance(value, str) or not value:
        raise _Invalid(INVALID_PARAMETER, f"Parameter {name} has no string value")
    return value


def _risk_indicator_and_nhs_number(parameters: dict[str, Node]) -> str:
    if _string_parameter(parameters["RiskIndicator"], "RiskIndicator") != codes.RISK_INDICATOR_FGM:
        raise _Invalid(INVALID_PARAMETER, "Parameter RiskIndicator must be FGM")
    return _checked_nhs_number(_string_parameter(parameters["NHSNumber"], "NHSNumber"))


def _checked_nhs_number(value: str) -> str:
    if not nhs_number.is_valid(value):
        raise _Invalid(INVALID_NHS_NUMBER, "The NHS number is not 10 digits with a valid Modulus 11 check digit")
    return value


def _parse_query(
    bundle: _Bundle, header: RequestHeader, practitioner: Practitioner, organization: Organization | None
) -> QueryRequest:
    parameters = _parameters(bundle, ("RiskIndicator", "NHSNumber"))
    return QueryRequest(header, practitioner, organization, _risk_indicator_and_nhs_number(parameters))


def _parse_delete(
    bundle: _Bundle, header: RequestHeader, practitioner: Practitioner, organization: Organization | None
) -> DeleteRequest:
    parameters = _parameters(bundle, ("RiskIndicator", "NHSNumber", "FGMDeleteReason"))
    number = _risk_indicator_and_nhs_number(parameters)
    concept = _value(parameters["FGMDeleteReason"], "FGMDeleteReason", "CodeableConcept")
    if not isinstance(concept, dict):
        raise _Invalid(INVALID_PARAMETER, "Parameter FGMDeleteReason is not a CodeableConcept")
    # Other codings (translations) may ride along; exactly one reason from our code system counts.
    reasons: set[str | None] = set()
    for coding in _children(concept, "coding", "FGMDeleteReason.coding", INVALID_PARAMETER):
        system = _optional_text(coding, "system", "FGMDeleteReason.coding.system", INVALID_PARAMETER)
        if system is not None and same_canonical(system, codes.DELETE_REASON_SYSTEM):
            reasons.add(_optional_text(coding, "code", "FGMDeleteReason.coding.code", INVALID_PARAMETER))
    reason = reasons.pop() if len(reasons) == 1 else None
    if reason is None or reason not in codes.DELETE_REASONS:
        raise _Invalid(INVALID_PARAMETER, "Parameter FGMDeleteReason must carry one fgm-delete-reason-codes-1-0 code")
    return DeleteRequest(header, practitioner, organization, number, reason)


def _parse_create(
    bundle: _Bundle, header: RequestHeader, practitioner: Practitioner, organization: Organization | None
) -> CreateRequest:
    flag = _payload(bundle, "Flag")
    contained = _contained(flag)

    if not _is_fgm_code(_child(flag, "code", "Flag.code", INVALID_PARAMETER)):
        raise _Invalid(INVALID_PARAMETER, "Flag.code must be the FGM risk indicator")
    if _optional_text(flag, "status", "Flag.status", INVALID_PARAMETER) != "active":
        raise _Invalid(INVALID_PARAMETER, "Flag.status must be active")

    subject = _child(flag, "subject", "Flag.subject")
    patient = _resolve_contained(contained, _text(subject, "reference", "Flag.subject.reference"), "Patient",
                                 "Flag.subject")
    number = _checked_nhs_number(_nhs_number_identifier(patient))
    birth_date = _date(_text(patient, "birthDate", "Patient.birthDate", INVALID_PARAMETER), "Patient.birthDate")

    care_provider = _child(patient, "careProvider", "Patient.careProvider", INVALID_PARAMETER)
    gp = _resolve_contained(contained, _text(care_provider, "reference", "Patient.careProvider.reference"),
                            "Organization", "Patient.careProvider")
    gp_ods_code = _identifiers(gp, "Organization.identifier", (codes.ODS_ORGANIZATION_CODE_SYSTEM,)).get(
        codes.ODS_ORGANIZATION_CODE_SYSTEM
    )
    if gp_ods_code is None:
        raise _Invalid(INVALID_PARAMETER, "The GP Organization has no ODS organisation code")

    period = _child(flag, "period", "Flag.period", INVALID_PARAMETER)
    assessment_date = _date(_text(period, "start", "Flag.period.start", INVALID_PARAMETER), "Flag.period.start")
    if "end" in period:  # spine-ris-flag-1-0 fixes period.end to 0..0: an indicator has no end date
        raise _Invalid(INVALID_PARAMETER, "Flag.period.end is not allowed: an FGM risk indicator has no end date")
    return CreateRequest(header, practitioner, organization, number, birth_date, gp_ods_code, assessment_date)


def _is_fgm_code(concept: Node) -> bool:
    for coding in _children(concept, "coding", "Flag.code.coding", INVALID_PARAMETER):
        system = _optional_text(coding, "system", "Flag.code.coding.system", INVALID_PARAMETER)
        code = _optional_text(coding, "code", "Flag.code.coding.code", INVALID_PARAMETER)
        if system is not None and same_canonical(system, codes.RISK_INDICATOR_SYSTEM):
            return code == codes.RISK_INDICATOR_FGM
    return False



_PayloadParser: TypeAlias = Callable[[_Bundle, RequestHeader, Practitioner, Organization | None], Request]
_PAYLOAD_PARSERS: Final[Mapping[Interaction, _PayloadParser]] = {
    Interaction.QUERY: _parse_query,
    Interaction.CREATE: _parse_create,
    Interaction.DELETE: _parse_delete,
}
