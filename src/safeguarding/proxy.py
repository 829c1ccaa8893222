"""Behind a TLS-terminating proxy (docs/operations.md, "Behind a TLS-terminating proxy").

The proxy (nginx, HAProxy, a load balancer) does the mutual TLS and passes the client's certificate on in a
header; the service listens with plain HTTP on an internal address. ``ProxyHeaders`` wraps the app and,
for a request whose peer is on the ``[proxy] trusted`` list only:

- takes the client certificate from the configured header (default ``X-SSL-Client-Cert``), in nginx's
  ``$ssl_client_escaped_cert`` form (URL-escaped PEM) or the ``X-Forwarded-Client-Cert`` form
  (``Hash=...;Cert="<URL-escaped PEM>";...``), and puts it where the TLS layer puts a verified one
  (``scope["extensions"]["tls"]["client_cert_der"]``);
- honours ``X-Forwarded-For`` (the nearest address that is not itself a trusted proxy becomes the client)
  and ``X-Forwarded-Proto`` (the scheme of Location headers and links).

From any other address a client-certificate header is refused (403 OperationOutcome, logged as
``PROXY_HEADER_REFUSED``) and the forwarding headers are ignored. The proxy must set the header itself on
every request (overwriting whatever the client sent) and only from a certificate it has verified.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from .config_file import ProxyConfig

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
XFCC = b"x-forwarded-client-cert"


@dataclass(frozen=True)
class ProxySettings:
    trusted: tuple[Network, ...] = ()
    client_cert_header: str = "x-ssl-client-cert"

    def trusts(self, address: str | None) -> bool:
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)


def proxy_settings(config: ProxyConfig) -> ProxySettings:
    networks = tuple(ipaddress.ip_network(str(n), strict=False) for n in config.trusted)
    return ProxySettings(trusted=networks, client_cert_header=config.client_cert_header.lower())


class ForwardedCertificateError(ValueError):
    pass


def certificate_der(value: str, xfcc: bool = False) -> bytes | None:
    """The DER of a forwarded certificate header's value (``xfcc``: in the X-Forwarded-Client-Cert form); None
    when it holds no client certificate."""
    text = value.strip()
    if not text or text == "(null)":
        return None
    if xfcc:
        cert = _xfcc_cert(text)
        if cert is None:
            return None
        text = cert
    pem = unquote(text).replace("\t", "\n")
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii")).public_bytes(Encoding.DER)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ForwardedCertificateError("the forwarded client certificate is not a PEM certificate") from exc


def _xfcc_cert(value: str) -> str | None:
    element = value.split(",")[0]  # the first element: the certificate the proxy itself verified
    for pair in element.split(";"):
        key, _, item = pair.strip().partition("=")
        if key.lower() == "cert":
            return item.strip('"')
    return None


def _forwarded_client(values: Iterable[str], settings: ProxySettings, peer: str) -> str:
    """The nearest address in X-Forwarded-For that is not a trusted proxy (the list is appended to by each hop)."""
    hops = [hop.strip() for value in values for hop in value.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break
        client = hop
        if not settings.trusts(hop):
            break
    return client


class ProxyHeaders:
    """ASGI middleware applying the trusted proxies' headers (see the module's doc)."""

    def __init__(self, app: ASGIApp, settings: ProxySettings) -> None:
        self.app = app
        self.settings = settings
        self._cert_headers = {settings.client_cert_header.encode("latin-1"), XFCC}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        peer = client[0] if client else None
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        certs = [(k, v) for k, v in headers if k in self._cert_headers]
        if not self.settings.trusts(peer):
            if certs:
                log.warning("client certificate header from an untrusted address",
                            extra={"event": "PROXY_HEADER_REFUSED", "host": peer})
                await _refuse(send, 403, "ACCESS_DENIED", "A client certificate header is accepted only from a "
                              "trusted proxy", "forbidden")
                return
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        if certs:
            try:
                der = certificate_der(certs[0][1].decode("latin-1"), certs[0][0] == XFCC) if len(certs) == 1 \
                    else _several()
            except ForwardedCertificateError:
                log.warning("unreadable forwarded client certificate",
                            extra={"event": "PROXY_HEADER_REFUSED", "host": peer})
                await _refuse(send, 400, "MESSAGE_NOT_WELL_FORMED",
                              "The forwarded client certificate could not be read", "invalid")
                return
            if der is not None:
                scope["extensions"] = {**scope.get("extensions", {}), "tls": {"client_cert_der": der}}
        forwarded_for = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
        if forwarded_for and peer is not None:
            scope["client"] = (_forwarded_client(forwarded_for, self.settings, peer), 0)
        proto = [v.decode("latin-1").strip().lower() for k, v in headers if k == b"x-forwarded-proto"]
        if proto and proto[-1] in ("http", "https"):
            scope["scheme"] = proto[-1]
        await self.app(scope, receive, send)


def _several() -> bytes:
    raise ForwardedCertificateError("more than one client certificate header")


async def _refuse(send: Send, status: int, code: str, diagnostics: str, issue_type: str) -> None:
    from .api import errors as e
    from .api.hardening import SECURITY_HEADERS

    body = orjson.dumps(e.operation_outcome(e.ApiError(status, code, diagnostics, issue_type=issue_type)))
    headers: list[Any] = [(b"content-type", b"application/fhir+json; charset=utf-8"),
                          (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
