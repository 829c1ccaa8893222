"""The role the user selected, from an API gateway in front (docs/operations.md, "NHS CIS2 and other OpenID
Connect providers").

An API platform that signs the user in passes the role the user chose to the backend in a header (the NHS
API Platform sends ``NHSD-Session-URID``). With a ``[gateway]`` table, ``GatewayRole`` makes that header
count only when it comes from the gateway: for a request whose TCP peer is on ``addresses`` the configured
``role_header`` becomes the selected role (``NHSD-Session-URID`` as the authenticator reads it); from any
other address both headers are dropped (logged as ``GATEWAY_HEADER_DROPPED``). The role is still one of the
user's own roles from the token or UserInfo, and its activities decide as always.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

SESSION_URID = b"nhsd-session-urid"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class GatewaySettings:
    addresses: tuple[Network, ...]
    role_header: str = "NHSD-Session-URID"

    def trusts(self, host: str | None) -> bool:
        if host is None:
            return False
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in network for network in self.addresses)


class GatewayRole:
    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings
        self._header = settings.role_header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        named = (self._header, SESSION_URID)
        if self.settings.trusts(client[0] if client else None):
            role = [v for k, v in headers if k == self._header]
            kept = [(k, v) for k, v in headers if k not in named] + [(SESSION_URID, v) for v in role]
        else:
            kept = [(k, v) for k, v in headers if k not in named]
            if len(kept) != len(headers):
                log.info("role header from an address that is not the gateway dropped",
                         extra={"event": "GATEWAY_HEADER_DROPPED"})
        await self.app({**scope, "headers": kept}, receive, send)
