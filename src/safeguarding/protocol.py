"""The HTTP protocol every server of the service speaks (uvicorn's httptools one, made client-certificate
aware and bounded), and the uvicorn configuration they share.

uvicorn verifies client certificates against the configured CA but does not pass them to the app.
``TlsHttpToolsProtocol`` adds the peer certificate (DER) to each request's scope as
``scope["extensions"]["tls"]["client_cert_der"]``. It is only ever set from a certificate the TLS
layer has already verified: with ``CERT_OPTIONAL`` an untrusted certificate fails the handshake.

It also bounds what a hostile client can make the server hold (uvicorn's httptools protocol has no
limit on the size of a request head and no timeout until a first response): the request line and
headers may be at most 64 KiB and 100 fields (else 431), and must arrive within ``HEAD_TIMEOUT``
seconds (else 408); a client answered before it finished sending its body gets as long again, then
the connection is closed. Malformed HTTP is answered with an OperationOutcome too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from pathlib import Path
from typing import Any, Protocol

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .api import errors as e
from .api.hardening import SECURITY_HEADERS
from .security.tls_policy import policy_context_factory

log = logging.getLogger(__name__)


def env_seconds(variable: str, default: float) -> float:
    """A positive number of seconds from the environment, else the default."""
    try:
        value = float(os.environ.get(variable, default))
    except ValueError:
        return default
    return value if value > 0 else default


MAX_HEAD_BYTES = 64 * 1024  # request line and headers together (a CIS2 token is a few KiB)
MAX_HEAD_FIELDS = 100
HEAD_TIMEOUT = env_seconds("SAFEGUARDING_HEAD_TIMEOUT", 20.0)


class _Refused(Exception):
    """Raised in a parser callback; httptools reports it as a parse error, answered with ``_refusal``."""


def _not_http_1_1(data: bytes) -> bool:
    """Whether ``data``, the start of a request, has a complete request line that is not HTTP/1.1's: HTTP/1.0, or
    HTTP/0.9's bare ``GET /path`` (which the parser would hold, waiting for headers that never come)."""
    line, newline, _ = data.lstrip(b"\r\n").partition(b"\n")
    return bool(newline) and not line.rstrip(b"\r").endswith(b" HTTP/1.1")


class TlsHttpToolsProtocol(HttpToolsProtocol):
    _peer_der: bytes | None = None
    _timer: asyncio.TimerHandle | None = None
    _in_head = False  # a request line has begun and its headers are not complete
    _message_done = True  # the current request has arrived in full (body included)
    _head_bytes = 0
    _head_fields = 0
    _head_received = 0
    _refusal: tuple[e.ErrorRow, str] | None = None  # why the parser was stopped: the answer and its log reason

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        self._peer_der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self._arm()  # a connection that never sends a request is not kept

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # refused already
        if self._message_done and _not_http_1_1(data):
            self._refuse(e.NOT_HTTP, "not HTTP/1.1")
            return
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            # Still inside the head after all of this: httptools buffers an unfinished header line without
            # calling on_header, so the limit is on the bytes received too.
            self._head_received += len(data)
            if self._head_received > MAX_HEAD_BYTES:
                self._refusal = (e.HEAD_TOO_LARGE, "head too large")
                self._refuse(*self._refusal)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._message_done = True, False
        self._head_bytes = self._head_fields = self._head_received = 0
        if self._timer is None:
            self._arm()
        if self._peer_der:
            self.scope["extensions"] = {"tls": {"client_cert_der": self._peer_der}}

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value), 1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()  # from here the body is the application's to time (pipeline.read_body)
        if self.parser.get_http_version() != "1.1":
            # HTTP/1.0 and a bare HTTP/0.9-style request line: Spine's messaging speaks HTTP/1.1 only.
            self._refusal = (e.NOT_HTTP, "not HTTP/1.1")
            raise _Refused()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._message_done = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._message_done and not self.transport.is_closing():
            # Answered before the body had arrived (refused early): uvicorn's keep-alive timer is reset by
            # every byte, so a trickling client would keep the connection for ever. It gets HEAD_TIMEOUT.
            self._arm()

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this for any request httptools cannot parse, including a head over the limits.
        self._refuse(*(self._refusal or (e.NOT_HTTP, "not HTTP")))

    def _count(self, size: int, fields: int) -> None:
        self._head_bytes += size
        self._head_fields += fields
        if self._head_bytes > MAX_HEAD_BYTES or self._head_fields > MAX_HEAD_FIELDS:
            self._refusal = (e.HEAD_TOO_LARGE, "head too large")
            raise _Refused()

    def _arm(self) -> None:
        self._disarm()
        self._timer = self.loop.call_later(HEAD_TIMEOUT, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete and not self._in_head:
            self._arm()  # the application is answering (a pipelined request waits): not the client's fault
        elif self._in_head or self.cycle is None:
            self._refuse(e.REQUEST_TIMEOUT, "head timeout")
        else:
            self.transport.close()  # answered already; the rest of the body never came

    def _refuse(self, error: e.ErrorRow, reason: str) -> None:
        """Answer with an OperationOutcome straight on the connection (no request reached the app), then close."""
        if self.transport.is_closing():
            return
        body = orjson.dumps(e.operation_outcome(error))
        head = [STATUS_LINE[error.status], *(name + b": " + value + b"\r\n"
                                             for name, value in self.server_state.default_headers)]
        for name, value in [(b"content-type", b"application/fhir+json; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
                            *SECURITY_HEADERS]:
            head.append(name + b": " + value + b"\r\n")
        self.transport.write(b"".join(head) + b"\r\n" + body)
        self._disarm()
        self.transport.close()
        log.info("refused", extra={"event": "REQUEST_REFUSED", "status": error.status, "reason": reason})


class Listening(Protocol):
    """What a server's settings say of where and how it listens (the service's and the SMSP's)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def tls_cert(self) -> Path | None: ...
    @property
    def tls_key(self) -> Path | None: ...
    @property
    def client_ca(self) -> Path | None: ...


def listen_options(settings: Listening) -> dict[str, Any]:
    """Where and how a server listens (host, port, TLS), as plain values: the supervisor of several workers
    (supervisor.py) is handed them without importing the service."""
    tls: dict[str, Any] = {}
    if settings.tls_cert:
        tls = {
            "ssl_certfile": str(settings.tls_cert),
            "ssl_keyfile": str(settings.tls_key),
            "ssl_ca_certs": str(settings.client_ca) if settings.client_ca else None,
            "ssl_cert_reqs": int(ssl.CERT_OPTIONAL if settings.client_ca else ssl.CERT_NONE),
        }
    return {"host": settings.host, "port": settings.port, **tls}


def uvicorn_config(settings: Listening, app: Any, **extra: Any) -> uvicorn.Config:
    return config_for(listen_options(settings), app, **extra)


def config_for(listen: dict[str, Any], app: Any, **extra: Any) -> uvicorn.Config:
    """The uvicorn configuration of every server of the service, listening as ``listen`` says (over TLS: under
    the service's TLS policy, security/tls_policy.py)."""
    if listen.get("ssl_certfile"):
        extra.setdefault("ssl_context_factory", policy_context_factory)
    return uvicorn.Config(
        app,
        http=TlsHttpToolsProtocol,
        loop="uvloop",
        server_header=False,
        proxy_headers=False,  # forwarded headers are honoured from the configured proxies only (proxy.py)
        date_header=True,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=30,
        timeout_keep_alive=15,
        h11_max_incomplete_event_size=16 * 1024,
        **listen,
        **extra,
    )
