"""Parse FGM-IS DSTU2 request messages and render response messages (XML and JSON).

Pure functions: no HTTP, no storage, no clock. The HTTP layer picks the format from the
Content-Type, calls :func:`parse_request`, turns a :class:`MessageError` or the service's answer
into :func:`render_response`, and sends it with :func:`response_status` and ``CONTENT_TYPES``.

Validation is by hand, on the fields the business needs (DIGEST A11): the published profiles
contradict themselves and would reject the official examples.

Diagnostics never contain values from the message (NHS numbers, names, ids): they can end up
in logs, so they only say, in general words, which element is wrong.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Final, Literal, TypeAlias
from xml.sax.saxutils import escape

import orjson
from lxml import etree

from safeguarding.api.dstu2 import codes
from safeguarding.api.dstu2.codes import (
    AUTHOR_CREDENTIALS_ERROR,
    INVALID_NHS_NUMBER,
    INVALID_PARAMETER,
    MESSAGE_NOT_WELL_FORMED,
    SpineCode,
    same_canonical,
)
from safeguarding.api.dstu2.messages import (
    CreateRequest,
    DeleteRequest,
    FoundFlag,
    Interaction,
    Organization,
    Practitioner,
    QueryRequest,
    Request,
    RequestHeader,
)
from safeguarding.domain import nhs_number

Format: TypeAlias = Literal["xml", "json"]

XML_MEDIA_TYPES: Final = frozenset({"text/xml", "application/xml", "application/xml+fhir", "application/fhir+xml"})
JSON_MEDIA_TYPES: Final = frozenset({"application/json", "application/json+fhir", "application/fhir+json"})

# What we answer with (DIGEST A10: the guide's responses are application/xml+fhir).
CONTENT_TYPES: Final[Mapping[Format, str]] = {
    "xml": "application/xml+fhir;charset=utf-8",
    "json": "application/json+fhir;charset=utf-8",
}


def media_format(media_type: str) -> Format | None:
    """"xml" or "json" for a lowercased media type without parameters; None when it is neither."""
    if media_type in XML_MEDIA_TYPES:
        return "xml"
    if media_type in JSON_MEDIA_TYPES:
        return "json"
    return None


class MessageError(Exception):
    """A request the service must refuse, with the spine-response-code-2-0 row to answer with.

    ``request_header`` is set when the MessageHeader was read before the problem was found, so
    the error response can still point back at the request.
    """

    def __init__(self, spine_code: SpineCode, diagnostics: str, request_header: RequestHeader | None = None):
        super().__init__(f"{spine_code.code}: {diagnostics}")
        self.spine_code = spine_code
        self.diagnostics = diagnostics
        self.request_header = request_header


class _Invalid(Exception):
    """Raised inside the parser; parse_request attaches the header and re-raises as MessageError."""

    def __init__(self, spine_code: SpineCode, diagnostics: str):
        super().__init__(diagnostics)
        self.spine_code = spine_code
        self.diagnostics = diagnostics


# =============================================================================================
# Loading: XML and JSON both become the same neutral tree, so validation is written once.
# A node maps each element name to the list of its occurrences; an occurrence is a string
# (a primitive's value), a JSON number/boolean, or a nested node. Resources carry their type
# under "resourceType", as in JSON.
# =============================================================================================

Node: TypeAlias = "dict[str, list[Value]]"
Value: TypeAlias = "str | int | float | Node"

# Our messages are about eight levels deep; the limit stops hostile nesting long before
# Python's recursion limit.
_MAX_DEPTH: Final = 64
# Characters XML 1.0 cannot carry and FHIR strings may not contain; JSON can smuggle them in as
# \u0000 escapes (PostgreSQL cannot store a NUL: the audited user id made that a 500).
_CONTROL_CHARACTERS: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

_parsers = threading.local()


def _xml_parser() -> etree.XMLParser:
    # One parser per thread, used for every message that thread reads: lxml parsers are not to be shared
    # between threads, but may parse one document after another (making one cost more than the parse).
    parser: etree.XMLParser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = etree.XMLParser(
            resolve_entities=False,  # never expand entities (billion laughs, external entities)
            no_network=True,
            load_dtd=False,
            huge_tree=False,  # keep libxml2's size and depth limits
            remove_comments=True,
            remove_pis=True,
        )
    return parser


def _name(tag: str) -> tuple[str | None, str]:
    """An element's namespace and local name, as ``etree.QName`` gives them (read off its ``{ns}local`` tag)."""
    if tag[:1] == "{":
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def _load(body: bytes, media_type: str) -> Node:
    fmt = media_format(media_type)
    if fmt == "xml":
        return _load_xml(body)
    if fmt == "json":
        return _load_json(body)
    raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The content type is not a FHIR XML or JSON type")


def _load_xml(body: bytes) -> Node:
    # Refuse DTDs before the parser sees them; the docinfo check below also catches encodings
    # (UTF-16 and so on) that this byte scan cannot see.
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "Document type declarations are not allowed")
    try:
        root = etree.fromstring(body, _xml_parser())
    except (etree.XMLSyntaxError, ValueError):
        # The parser's message quotes the input, so it is not passed on.
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The body is not well-formed XML") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "Document type declarations are not allowed")
    namespace, _ = _name(root.tag)
    # Some published examples omit the FHIR namespace (DIGEST A10); then no element may have one.
    if namespace not in (codes.FHIR_NS, None):
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The root element is not in the FHIR namespace")
    return _xml_resource(root, "" if namespace is None else f"{{{namespace}}}", 0)


def _xml_resource(element: etree._Element, prefix: str, depth: int) -> Node:
    node = _xml_node(element, prefix, depth)
    node["resourceType"] = [element.tag[len(prefix):]]
    return node


def _xml_node(element: etree._Element, prefix: str, depth: int) -> Node:
    """``element``'s children as a node; ``prefix`` is the message's namespace as lxml writes it in a tag
    (``{http://hl7.org/fhir}``, or empty), so a child in it is named by slicing its tag."""
    if depth > _MAX_DEPTH:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The message is nested too deeply")
    node: Node = {}
    skip = len(prefix)
    for child in element.iterchildren(tag=etree.Element):
        tag = child.tag
        localname = tag[skip:] if tag.startswith(prefix) else "{"
        if localname[:1] == "{":  # in another namespace
            if _name(tag)[0] == codes.XHTML_NS:
                continue  # narrative (text.div): nothing we read
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The message mixes XML namespaces")
        value: Value
        if localname in ("resource", "contained"):
            # Resource wrappers: <resource><MessageHeader>...</MessageHeader></resource>
            inner = list(child.iterchildren(tag=etree.Element))
            if len(inner) != 1 or _name(inner[0].tag)[0] != (prefix[1:-1] or None):
                raise _Invalid(MESSAGE_NOT_WELL_FORMED, "A resource wrapper does not hold exactly one resource")
            value = _xml_resource(inner[0], prefix, depth + 1)
        elif (attribute := child.get("value")) is not None:
            # FHIR asks for leading/trailing whitespace to be dropped from XML values.
            value = attribute.strip()
        else:
            value = _xml_node(child, prefix, depth + 1)
        node.setdefault(localname, []).append(value)
    return node


def _load_json(body: bytes) -> Node:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The body is not well-formed JSON") from None
    if not isinstance(document, dict):
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The body is not a FHIR resource")
    return _json_node(document, 0)


def _json_node(obj: dict[str, object], depth: int) -> Node:
    if depth > _MAX_DEPTH:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The message is nested too deeply")
    node: Node = {}
    for key, raw in obj.items():
        # "_x" holds extensions of primitive x and "fhir_comments" comments (DSTU2 JSON): not read.
        if key.startswith("_") or key == "fhir_comments":
            continue
        values: list[Value] = []
        for item in raw if isinstance(raw, list) else [raw]:
            if item is None:
                continue  # DSTU2 JSON pads arrays with null to line them up with "_x" arrays
            if isinstance(item, dict):
                values.append(_json_node(item, depth + 1))
            elif isinstance(item, str):
                if _CONTROL_CHARACTERS.search(item):
                    raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The JSON holds control characters")
                values.append(item.strip())
            elif isinstance(item, (int, float)):  # also bool: kept, so a string check rejects it
                values.append(item)
            else:
                raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The JSON nests an array in an array")
        node[key] = values
    return node


# =============================================================================================
# Reading the neutral tree. ``path`` names the element in diagnostics; ``code`` is the row a
# problem maps to (structure by default, INVALID_PARAMETER for business fields).
# =============================================================================================


def _optional(node: Node, name: str, path: str, code: SpineCode) -> Value | None:
    values = node.get(name, [])
    if len(values) > 1:
        raise _Invalid(code, f"{path} is repeated")
    return values[0] if values else None


def _optional_text(node: Node, name: str, path: str, code: SpineCode = MESSAGE_NOT_WELL_FORMED) -> str | None:
    value = _optional(node, name, path, code)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(code, f"{path} is not a string value")
    return value or None  # an empty value counts as absent


def _text(node: Node, name: str, path: str, code: SpineCode = MESSAGE_NOT_WELL_FORMED) -> str:
    value = _optional_text(node, name, path, code)
    if value is None:
        raise _Invalid(code, f"{path} is missing")
    return value


def _optional_child(node: Node, name: str, path: str, code: SpineCode = MESSAGE_NOT_WELL_FORMED) -> Node | None:
    value = _optional(node, name, path, code)
    if value is None or isinstance(value, dict):
        return value
    raise _Invalid(code, f"{path} is not an element")


def _child(node: Node, name: str, path: str, code: SpineCode = MESSAGE_NOT_WELL_FORMED) -> Node:
    value = _optional_child(node, name, path, code)
    if value is None:
        raise _Invalid(code, f"{path} is missing")
    return value


def _children(node: Node, name: str, path: str, code: SpineCode = MESSAGE_NOT_WELL_FORMED) -> list[Node]:
    values = node.get(name, [])
    children = [v for v in values if isinstance(v, dict)]
    if len(children) != len(values):
        raise _Invalid(code, f"{path} is not an element")
    return children


def _resource_type(node: Node) -> str | None:
    values = node.get("resourceType", [])
    value = values[0] if len(values) == 1 else None
    return value if isinstance(value, str) else None


_ID: Final = r"[A-Za-z0-9\-.]{1,64}"  # the FHIR id type
_RELATIVE_REFERENCE: Final = re.compile(rf"(?P<type>[A-Z][A-Za-z]+)/(?P<id>{_ID})")
_LOCAL_REFERENCE: Final = re.compile(rf"#(?P<id>{_ID})")
_ASID_ENDPOINT: Final = re.compile(re.escape(codes.ASID_ENDPOINT_PREFIX) + r"(?P<asid>[0-9]{1,20})")
_INSTANT: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


class _Bundle:
    """The message's entries, with relative references resolved the way the guide requires."""

    def __init__(self, root: Node):
        if _resource_type(root) != "Bundle":
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The message is not a Bundle")
        if _optional_text(root, "type", "Bundle.type") != "message":
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, "Bundle.type is not message")
        self.resources: list[Node] = []
        self._by_reference: dict[tuple[str, str], Node] = {}
        for entry in _children(root, "entry", "Bundle.entry"):
            resource = _child(entry, "resource", "Bundle.entry.resource")
            resource_type = _resource_type(resource)
            if resource_type is None:
                raise _Invalid(MESSAGE_NOT_WELL_FORMED, "A Bundle entry has no resource type")
            resource_id = _optional_text(resource, "id", "Bundle.entry.resource.id")
            if resource_id is not None:
                if (resource_type, resource_id) in self._by_reference:
                    raise _Invalid(MESSAGE_NOT_WELL_FORMED, "Two Bundle entries share a type and id")
                self._by_reference[(resource_type, resource_id)] = resource
            self.resources.append(resource)
        if not self.resources or _resource_type(self.resources[0]) != "MessageHeader":
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The first Bundle entry is not a MessageHeader")
        if len(self.of_type("MessageHeader")) != 1:
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The Bundle holds more than one MessageHeader")

    @property
    def header(self) -> Node:
        return self.resources[0]

    def of_type(self, resource_type: str) -> list[Node]:
        return [r for r in self.resources if _resource_type(r) == resource_type]

    def resolve(self, reference: str, resource_type: str, path: str) -> Node:
        """The entry a relative reference (``Type/id``) points at; it must exist and be of the given type."""
        match = _RELATIVE_REFERENCE.fullmatch(reference)
        if match is None or match["type"] != resource_type:
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, f"{path} is not a relative reference to a {resource_type}")
        resource = self._by_reference.get((resource_type, match["id"]))
        if resource is None:
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, f"{path} refers to a {resource_type} that is not in the Bundle")
        return resource


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


def _contained(resource: Node) -> dict[str, Node]:
    found: dict[str, Node] = {}
    for node in _children(resource, "contained", "Flag.contained"):
        contained_id = _optional_text(node, "id", "Flag.contained.id")
        if contained_id is None:
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, "A contained resource has no id")
        if contained_id in found:
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, "Two contained resources share an id")
        found[contained_id] = node
    return found


def _resolve_contained(contained: dict[str, Node], reference: str, resource_type: str, path: str) -> Node:
    match = _LOCAL_REFERENCE.fullmatch(reference)
    node = contained.get(match["id"]) if match else None
    if node is None or _resource_type(node) != resource_type:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, f"{path} does not refer to a contained {resource_type}")
    return node


def _date(value: str, path: str) -> date:
    # The guide asks for YYYY-MM-DD; partial dates (YYYY, YYYY-MM) are not enough for the rules.
    try:
        if _DATE.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise _Invalid(INVALID_PARAMETER, f"{path} is not a date (YYYY-MM-DD)")


_PayloadParser: TypeAlias = Callable[[_Bundle, RequestHeader, Practitioner, Organization | None], Request]
_PAYLOAD_PARSERS: Final[Mapping[Interaction, _PayloadParser]] = {
    Interaction.QUERY: _parse_query,
    Interaction.CREATE: _parse_create,
    Interaction.DELETE: _parse_delete,
}


# =============================================================================================
# Responses. Resources are built as DSTU2 JSON objects whose keys are in DSTU2 element order;
# the XML writer walks the same objects, so both formats come from one description.
# =============================================================================================

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
                if _CONTROL_CHARACTERS.search(item):
                    raise ValueError("a DSTU2 XML value holds characters XML cannot carry")
                parts.append(f'<{key} value="{escape(item, _ATTRIBUTE_ENTITIES)}"/>')
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
