"""Serving over HTTPS with uvicorn, handing the verified client certificate to the application.

uvicorn verifies client certificates against the configured CA but does not pass them to the app.
``TlsHttpToolsProtocol`` adds the peer certificate (DER) to each request's scope as
``scope["extensions"]["tls"]["client_cert_der"]``. It is only ever set from a certificate the TLS
layer has already verified: with ``CERT_OPTIONAL`` an untrusted certificate fails the handshake.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .app import create_app
from .settings import Settings

log = logging.getLogger(__name__)


class TlsHttpToolsProtocol(HttpToolsProtocol):
    _peer_der: bytes | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        self._peer_der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._peer_der:
            self.scope["extensions"] = {"tls": {"client_cert_der": self._peer_der}}


def uvicorn_config(settings: Settings, app: Any) -> uvicorn.Config:
    tls: dict[str, Any] = {}
    if settings.tls_cert:
        tls = {
            "ssl_certfile": str(settings.tls_cert),
            "ssl_keyfile": str(settings.tls_key),
            "ssl_ca_certs": str(settings.client_ca) if settings.client_ca else None,
            "ssl_cert_reqs": ssl.CERT_OPTIONAL if settings.client_ca else ssl.CERT_NONE,
        }
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=TlsHttpToolsProtocol,
        loop="uvloop",
        server_header=False,
        date_header=True,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=30,
        timeout_keep_alive=15,
        h11_max_incomplete_event_size=16 * 1024,
        **tls,
    )


def serve(settings: Settings) -> None:
    app = create_app(settings)
    log.info("starting", extra={"event": "SERVER_STARTING", "host": settings.host, "port": settings.port})
    uvicorn.Server(uvicorn_config(settings, app)).run()
