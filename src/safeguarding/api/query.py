"""A request's query string, parsed as Starlette's ``QueryParams`` parses it, for a fraction of the cost.

Starlette decodes the raw query as Latin-1 and hands it to ``urllib.parse.parse_qsl`` (blank values
kept): fields split on ``&``, a field without ``=`` has the value ``""``, and ``+`` and ``%``-escapes
are decoded as UTF-8 (invalid bytes replaced). That general path cost ~15% of a search's CPU; most
fields need no decoding at all, so here they are only split. ``get`` answers the last value of a
repeated name and ``getlist`` every value in order, as ``QueryParams`` does
(``tests/unit/test_query.py`` checks the two agree on any input).
"""

from __future__ import annotations

from urllib.parse import unquote_plus


def _decoded(text: str) -> str:
    return unquote_plus(text, errors="replace") if "%" in text or "+" in text else text


class Query:
    __slots__ = ("_fields",)

    def __init__(self, raw: bytes = b"") -> None:
        fields: dict[str, list[str]] = {}
        if raw:
            for field in raw.decode("latin-1").split("&"):
                if not field:
                    continue
                name, _, value = field.partition("=")
                name, value = _decoded(name), _decoded(value)
                if name in fields:
                    fields[name].append(value)
                else:
                    fields[name] = [value]
        self._fields = fields

    def getlist(self, name: str) -> list[str]:
        return list(self._fields.get(name, ()))

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._fields.get(name)
        return values[-1] if values else default
