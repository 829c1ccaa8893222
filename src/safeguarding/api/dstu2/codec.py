"""Parse FGM-IS DSTU2 request messages and render response messages (XML and JSON): the codec's one door.

Pure functions: no HTTP, no storage, no clock. ``media.py`` names the formats, ``tree.py`` loads a
message into a neutral tree, ``reader.py`` reads requests from it and ``writer.py`` writes responses.

The HTTP layer picks the format from the Content-Type, calls :func:`parse_request`, turns a
:class:`MessageError` or the service's answer into :func:`render_response`, and sends it with
:func:`response_status` and ``CONTENT_TYPES``.

Validation is by hand, on the fields the business needs (DIGEST A11): the published profiles
contradict themselves and would reject the official examples.

Diagnostics never contain values from the message (NHS numbers, names, ids): they can end up
in logs, so they only say, in general words, which element is wrong.
"""

from safeguarding.api.dstu2.media import CONTENT_TYPES, JSON_MEDIA_TYPES, XML_MEDIA_TYPES, Format, media_format
from safeguarding.api.dstu2.reader import parse_request
from safeguarding.api.dstu2.tree import MessageError
from safeguarding.api.dstu2.writer import render_response, response_status

__all__ = ["CONTENT_TYPES", "JSON_MEDIA_TYPES", "XML_MEDIA_TYPES", "Format", "MessageError", "media_format",
           "parse_request", "render_response", "response_status"]
