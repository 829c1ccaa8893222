"""What a client sent on the wire, kept with the request's audit event for the assurance report
(``safeguarding assure``): which trace-id headers it sent, its SOAPAction, its IsUnscheduledAccessEvent,
its token's client id (``azp``), and a sandbox scenario it asked for. Only names and fixed codes:
never an NHS number, a body or a token."""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
from starlette.types import Scope

from .steps import TRACE_HEADERS, TRACE_KEYS

# Facts an outer layer (the sandbox's scenario middleware) leaves in the ASGI scope for the audit.
SCOPE_SCENARIO = "safeguarding.scenario"
SCOPE_ABANDONED = "safeguarding.abandoned"
_ORDER = list(TRACE_HEADERS.values())  # the trace-id headers' canonical names, in the order they are recorded
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9._:\-/#]{1,128}$")  # a URN, a client id: anything else is 'other'


def _code(value: str) -> str:
    value = value.strip().strip('"')
    return value if _TOKEN_CHARS.match(value) else "other"


def _client_id(authorization: str | None) -> str | None:
    """The bearer token's ``azp`` (the application it was issued to), read from its payload. Recorded only
    when the token was verified (``WireFacts.encode``)."""
    payload = _payload(authorization)
    if payload is None:
        return None
    if payload in _CLIENT_IDS:
        return _CLIENT_IDS[payload]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    azp = claims.get("azp") if isinstance(claims, dict) else None
    found = _code(azp) if isinstance(azp, str) else None
    if len(_CLIENT_IDS) >= _CLIENT_IDS_MAX:
        _CLIENT_IDS.clear()
    _CLIENT_IDS[payload] = found
    return found


def _payload(authorization: str | None) -> str | None:
    """A bearer token's payload: ``authorization`` is ``Bearer`` (any case), a space, then (spaces around it
    stripped) exactly three parts between dots, of which this is the second. The same answer as lower-casing
    the whole header and splitting the token on dots, without copying a kilobyte of token twice and lower-casing
    it a request: the scheme alone is lower-cased (a Latin-1 header's lower case is as long as it), and the dots
    are found rather than split on (``tests/unit/test_wire.py`` checks the two agree)."""
    if not authorization or authorization[:7].lower() != "bearer ":
        return None
    token = authorization[7:].strip()
    first = token.find(".")
    second = token.find(".", first + 1) if first >= 0 else -1
    if second < 0 or token.find(".", second + 1) >= 0:
        return None
    return token[first + 1:second]


class WireFacts:
    """Collected as the request arrives; encoded into the audit event once the caller is known."""

    __slots__ = ("facts", "authorization")

    def __init__(self, facts: dict[str, Any], authorization: str | None) -> None:
        self.facts, self.authorization = facts, authorization

    def encode(self, authenticated_user: bool) -> str:
        facts = self.facts
        client_id = _client_id(self.authorization) if authenticated_user else None  # read only when verified
        if client_id:
            facts = {**facts, "client_id": client_id}
        return orjson.dumps(facts).decode()


_CLIENT_IDS: dict[str, str | None] = {}  # token payload -> azp: a client sends one token many times
_CLIENT_IDS_MAX = 1024


def wire_facts(scope: Scope) -> WireFacts:
    """One pass over the raw headers (uvicorn hands them lower-cased)."""
    ids: list[str] = []
    facts: dict[str, Any] = {"ids": ids}
    authorization = None
    for key, value in scope.get("headers", ()):
        name = TRACE_KEYS.get(key)
        if name is not None:
            if name not in ids:
                ids.append(name)
        elif key == b"authorization":
            authorization = value.decode("latin-1")
        elif key == b"soapaction":
            facts["soap_action"] = _code(value.decode("latin-1"))
        elif key == b"isunscheduledaccessevent":
            flag = value.decode("latin-1").strip().lower()
            facts["unscheduled"] = flag if flag in ("true", "false") else "other"
    ids.sort(key=_ORDER.index)
    if scope.get(SCOPE_SCENARIO):
        facts["scenario"] = scope[SCOPE_SCENARIO]
    if scope.get(SCOPE_ABANDONED):
        facts["abandoned"] = True
    return WireFacts(facts, authorization)
