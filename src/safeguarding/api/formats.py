"""FHIR R4 wire formats: content negotiation, hardened parsing and serialisation (JSON and XML)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from lxml import etree
from pydantic import ValidationError

from .errors import NOT_ACCEPTABLE, NOT_WELL_FORMED, UNSUPPORTED_MEDIA, ApiError

JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
XML_TYPES = frozenset({"application/fhir+xml", "application/xml", "application/xml+fhir", "text/xml"})
FORMAT_ALIASES = {"json": "json", "xml": "xml", **{t: "json" for t in JSON_TYPES}, **{t: "xml" for t in XML_TYPES}}
CONTENT_TYPES = {"json": "application/fhir+json; charset=utf-8", "xml": "application/fhir+xml; charset=utf-8"}

M = TypeVar("M", bound=Resource)
R = TypeVar("R")
T = TypeVar("T")

# fhir.resources' XML reader fails on unknown elements with these rather than a ValidationError.
XML_MODEL_ERRORS = (KeyError, TypeError, AttributeError)


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def request_format(content_type: str | None) -> str:
    fmt = FORMAT_ALIASES.get(media_type(content_type))
    if fmt is None:
        raise UNSUPPORTED_MEDIA.error()
    return fmt


def response_format(accept: str | None, format_param: str | None) -> str:
    """``_format`` wins over ``Accept``; no preference means JSON."""
    if format_param is not None:
        fmt = FORMAT_ALIASES.get(format_param.strip().lower().replace(" ", "+"))
        if fmt is None:
            raise NOT_ACCEPTABLE.error()
        return fmt
    if not accept:
        return "json"
    for item in accept.split(","):
        kind = media_type(item)
        if not _fhir_r4(item):
            continue
        if kind in ("*/*", "application/*", ""):
            return "json"
        if kind in FORMAT_ALIASES:
            return FORMAT_ALIASES[kind]
    raise NOT_ACCEPTABLE.error()


def _fhir_r4(item: str) -> bool:
    """False when a media range asks for another FHIR version (``fhirVersion=3.0``): this server speaks R4 only.
    FHIR names a version by major.minor (``4.0``); ``4.0.1`` is taken too."""
    for parameter in item.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "fhirversion" and value.strip().strip('"') not in ("4.0", "4.0.1"):
            return False
    return True


def hardened_xml_parser() -> etree.XMLParser:
    """Never resolves entities, never loads a DTD, never touches the network, refuses huge trees."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_comments=True, remove_pis=True,
    )


def parse_xml(body: bytes) -> etree._Element:
    try:
        root = etree.fromstring(body, parser=hardened_xml_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise NOT_WELL_FORMED.error() from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise ApiError(400, "MESSAGE_NOT_WELL_FORMED", "DTDs and entity declarations are not allowed",
                       issue_type="structure")
    return root


def _expression(resource_type: str, loc: tuple[int | str, ...]) -> str:
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


# The FHIR models take ~0.1-0.5 ms per element, XML superlinearly (60,000 attributes took 12 s, 10,000
# empty codings 2.4 s), so a hostile 1 MiB body could hold a worker and the GIL for a minute. At 2,000 the
# worst we found is ~0.3 s; no resource parsed here comes near it (a Flag has ~30, a 100-reference
# acknowledgement ~500). CP-IS batch uploads are parsed entry by entry (api/r4/careplan.py), not here.
MAX_NODES = 2_000
# FHIR strings "SHALL NOT contain Unicode character points below 32, except for u0009, u000D and u000A";
# XML cannot carry them (nor U+FFFE, U+FFFF, lone surrogates) and PostgreSQL cannot store NUL. JSON can
# smuggle them in as \u0000 escapes, in values and in names (which come back in an error's expressions,
# and could then not be answered in XML: found by the schema fuzz).
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _check_json(data: object, resource_type: str) -> None:
    """At most MAX_NODES objects, arrays and values; no control characters in strings."""
    pending, seen = [data], 0
    while pending:
        item = pending.pop()
        seen += 1
        if seen > MAX_NODES:
            raise _too_many(resource_type)
        if isinstance(item, dict):
            pending.extend(item.values())
            pending.extend(item.keys())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and _CONTROL_CHARACTERS.search(item):
            raise ApiError(400, "INVALID_RESOURCE", f"The {resource_type} contains control characters, which FHIR "
                           "strings may not")


def _check_xml(root: etree._Element, resource_type: str) -> None:
    """At most MAX_NODES elements and attributes together."""
    seen = 0
    for element in root.iter():
        seen += 1 + len(element.attrib)
        if seen > MAX_NODES:
            raise _too_many(resource_type)


def _too_many(resource_type: str) -> ApiError:
    return ApiError(413, "REQUEST_TOO_LARGE", f"The {resource_type} has more than {MAX_NODES} elements",
                    issue_type="too-long")


def parse_resource(body: bytes, fmt: str, model: type[M]) -> M:
    """Parse and structurally validate one resource of the expected type. Every issue is reported."""
    if fmt == "json":
        return _validated(model, lambda: model.model_validate(_json_object(body, model.__name__)))
    return _validated(model, lambda: _xml_model(body, model))


def read_resource(body: bytes, fmt: str, model: type[M], read: Callable[[M], R],
                  quick: Callable[[dict[str, Any]], R | None]) -> R:
    """``read`` of the resource ``parse_resource`` gives, with its errors; but a JSON resource that
    ``quick`` recognises as plain is read by it without building the model (None: not plain)."""
    if fmt != "json":
        return read(parse_resource(body, fmt, model))
    data = _validated(model, lambda: _json_object(body, model.__name__))
    found = quick(data)
    return found if found is not None else read(_validated(model, lambda: model.model_validate(data)))


def _json_object(body: bytes, resource_type: str) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NOT_WELL_FORMED.error() from exc
    if not isinstance(data, dict):
        raise NOT_WELL_FORMED.error()
    if data.get("resourceType") != resource_type:
        raise _wrong_type(resource_type)
    _check_json(data, resource_type)
    return data


def _xml_model(body: bytes, model: type[M]) -> M:
    resource_type = model.__name__
    root = parse_xml(body)
    if etree.QName(root).localname != resource_type or etree.QName(root).namespace != "http://hl7.org/fhir":
        raise _wrong_type(resource_type)
    _check_xml(root, resource_type)
    try:
        return model.model_validate_xml(body, xmlparser=hardened_xml_parser())
    except ValidationError:
        raise  # reported with its expressions by _validated
    except (ValueError, *XML_MODEL_ERRORS) as exc:  # e.g. an unknown contained resource type: ValueError
        raise ApiError(400, "INVALID_RESOURCE", f"The {resource_type} does not conform to FHIR R4") from exc


def _validated(model: type[Resource], parse: Callable[[], T]) -> T:
    """``parse()``, its validation errors reported with every issue's expression."""
    resource_type = model.__name__
    try:
        return parse()
    except ValidationError as exc:
        expressions = tuple(sorted({_expression(resource_type, e["loc"]) for e in exc.errors(include_input=False)}))
        raise ApiError(400, "INVALID_RESOURCE", f"The {resource_type} does not conform to FHIR R4",
                       expressions=expressions) from exc
    except RecursionError as exc:
        raise NOT_WELL_FORMED.error() from exc


def _wrong_type(expected: str) -> ApiError:
    return ApiError(400, "INVALID_RESOURCE", f"The request body must be a {expected} resource")


def serialise(resource: dict[str, Any], fmt: str) -> bytes:
    if fmt == "json":
        return orjson.dumps(resource)
    model = get_fhir_model_class(resource["resourceType"])
    xml = model.model_validate(resource).model_dump_xml()
    return xml if isinstance(xml, bytes) else xml.encode()
