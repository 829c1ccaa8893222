"""The DSTU2 wire formats: which media types are XML and which JSON, and what we answer with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, TypeAlias

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
