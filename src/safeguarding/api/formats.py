"""FHIR R4 wire formats: content negotiation, hardened parsing and serialisation (JSON and XML)."""

from __future__ import annotations

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


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def request_format(content_type: str | None) -> str:
    fmt = FORMAT_ALIASES.get(media_type(content_type))
    if fmt is None:
        raise UNSUPPORTED_MEDIA
    return fmt


def response_format(accept: str | None, format_param: str | None) -> str:
    """``_format`` wins over ``Accept``; no preference means JSON."""
    if format_param is not None:
        fmt = FORMAT_ALIASES.get(format_param.strip().lower().replace(" ", "+"))
        if fmt is None:
            raise NOT_ACCEPTABLE
        return fmt
    if not accept:
        return "json"
    for item in accept.split(","):
        kind = media_type(item)
        if kind in ("*/*", "application/*", ""):
            return "json"
        if kind in FORMAT_ALIASES:
            return FORMAT_ALIASES[kind]
    raise NOT_ACCEPTABLE


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
        raise NOT_WELL_FORMED from exc
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


def parse_resource(body: bytes, fmt: str, model: type[M]) -> M:
    """Parse and structurally validate one resource of the expected type. Every issue is reported."""
    resource_type = model.__name__
    try:
        if fmt == "json":
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise NOT_WELL_FORMED from exc
            if not isinstance(data, dict):
                raise NOT_WELL_FORMED
            if data.get("resourceType") != resource_type:
                raise _wrong_type(resource_type)
            return model.model_validate(data)
        root = parse_xml(body)
        if etree.QName(root).localname != resource_type or etree.QName(root).namespace != "http://hl7.org/fhir":
            raise _wrong_type(resource_type)
        return model.model_validate_xml(body, xmlparser=hardened_xml_parser())
    except ValidationError as exc:
        expressions = tuple(sorted({_expression(resource_type, e["loc"]) for e in exc.errors(include_input=False)}))
        raise ApiError(400, "INVALID_RESOURCE", f"The {resource_type} does not conform to FHIR R4",
                       expressions=expressions) from exc
    except RecursionError as exc:
        raise NOT_WELL_FORMED from exc


def _wrong_type(expected: str) -> ApiError:
    return ApiError(400, "INVALID_RESOURCE", f"The request body must be a {expected} resource")


def serialise(resource: dict[str, Any], fmt: str) -> bytes:
    if fmt == "json":
        return orjson.dumps(resource)
    model = get_fhir_model_class(resource["resourceType"])
    xml = model.model_validate(resource).model_dump_xml()
    return xml if isinstance(xml, bytes) else xml.encode()
