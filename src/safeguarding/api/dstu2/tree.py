"""The neutral tree every DSTU2 message is read into, and the readers of its elements.

XML and JSON both become the same tree, so validation is written once (``reader.py`` for requests,
``requester.py`` for the national service's responses). Loading is hardened: no entities, no DTDs, no
network, bounded depth, no control characters. Diagnostics never quote values from the message.
"""

from __future__ import annotations

import re
import threading
from datetime import date
from typing import Final, TypeAlias

import orjson
from lxml import etree

from safeguarding.api.dstu2 import codes
from safeguarding.api.dstu2.codes import (
    INVALID_PARAMETER,
    MESSAGE_NOT_WELL_FORMED,
    SpineCode,
)
from safeguarding.api.dstu2.media import media_format
from safeguarding.api.dstu2.messages import (
    RequestHeader,
)


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
            remove_blank_text=True,  # whitespace between elements: never read, so not kept
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
    return _xml_tree(root, "" if namespace is None else f"{{{namespace}}}")


_WRAPPERS: Final = frozenset({"resource", "contained"})  # <resource><MessageHeader>...</MessageHeader></resource>
_XHTML: Final = f"{{{codes.XHTML_NS}}}"  # narrative (text.div): nothing we read


def _xml_tree(root: etree._Element, prefix: str) -> Node:
    """The root resource as a node; ``prefix`` is the message's namespace as lxml writes it in a tag
    (``{http://hl7.org/fhir}``, or empty), so an element in it is named by slicing its tag.

    One pass over the elements in document order (lxml's ``iter``, in C, rather than a Python call and a
    child iterator per element), each filed under the node of its parent: an element with a ``value``
    becomes that string, a resource wrapper the node of the one resource it holds, any other element a node
    of its own. What lies under a value or a narrative has no node to be filed in, so it is not read.
    Problems are found in document order, as a depth-first walk would find them."""
    skip = len(prefix)
    namespace = prefix[1:-1] or None
    tree: Node = {}
    # The node each element read so far fills, and its depth (a wrapper adds none: its resource fills a node).
    nodes: dict[etree._Element, tuple[Node, int]] = {root: (tree, 0)}
    resources: list[tuple[Node, str]] = [(tree, root.tag[skip:])]
    elements = root.iter(etree.Element)
    next(elements)  # the root
    for child in elements:
        parent = nodes.get(child.getparent())
        if parent is None:
            continue  # under a value or a narrative, or a wrapper's resource (filed with its wrapper)
        node, depth = parent
        tag = child.tag
        if not tag.startswith(prefix) or tag[skip] == "{":  # in another namespace
            if tag.startswith(_XHTML):
                continue
            raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The message mixes XML namespaces")
        localname = tag[skip:]
        value: Value
        if localname in _WRAPPERS:
            inner = list(child.iterchildren(tag=etree.Element))
            if len(inner) != 1 or _name(inner[0].tag)[0] != namespace:
                raise _Invalid(MESSAGE_NOT_WELL_FORMED, "A resource wrapper does not hold exactly one resource")
            value = _nested(nodes, inner[0], depth)
            resources.append((value, inner[0].tag[skip:]))
        elif (attribute := child.get("value")) is not None:
            # FHIR asks for leading/trailing whitespace to be dropped from XML values.
            value = attribute.strip()
        else:
            value = _nested(nodes, child, depth)
        node.setdefault(localname, []).append(value)
    for resource, resource_type in resources:
        resource["resourceType"] = [resource_type]  # last, so an element of that name cannot add to it
    return tree


def _nested(nodes: dict[etree._Element, tuple[Node, int]], element: etree._Element, depth: int) -> Node:
    """A new node for ``element``, one level below ``depth``, for its children to be filed in."""
    if depth >= _MAX_DEPTH:
        raise _Invalid(MESSAGE_NOT_WELL_FORMED, "The message is nested too deeply")
    node: Node = {}
    nodes[element] = (node, depth + 1)
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
