"""Serving over HTTPS with uvicorn, handing the verified client certificate to the application.

uvicorn verifies client certificates against the configured CA but does not pass them to the app.
``TlsHttpToolsProtocol`` adds the peer certificate (DER) to each request's scope as
``scope["extensions"]["tls"]["client_cert_der"]``. It is only ever set from a certificate the TLS
layer has already verified: with ``CERT_OPTIONAL`` an untrusted certificate fails the handshake.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from . import logs, metrics
from .app import create_app
from .settings import Settings, file_settings, sandbox_settings

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


@dataclass(frozen=True)
class ServeSpec:
    """How to rebuild the settings in a worker process (workers re-read configuration, never share state)."""

    sandbox: bool
    data_dir: str
    config: str | None
    host: str
    port: int
    database_url: str | None

    def settings(self) -> Settings:
        if self.config is not None:
            return file_settings(Path(self.config), host=self.host, port=self.port, database_url=self.database_url)
        return sandbox_settings(Path(self.data_dir), host=self.host, port=self.port, database_url=self.database_url)


_SPEC_ENV = "SAFEGUARDING_SERVE_SPEC"


def app_from_environment() -> Starlette:
    """The app factory each worker process calls (``uvicorn ... --factory``)."""
    settings = ServeSpec(**json.loads(os.environ[_SPEC_ENV])).settings()
    logs.configure(settings.log_level)
    return create_app(settings)


def uvicorn_config(settings: Settings, app: Any, **extra: Any) -> uvicorn.Config:
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
        **extra,
    )


def serve(settings: Settings, spec: ServeSpec, workers: int = 1) -> None:
    """Serve until SIGTERM/SIGINT; requests in flight are finished (up to 30 s) before exiting.

    With several workers, each is a separate process with its own store connections; nothing that
    matters for correctness lives in a process (uniqueness and the audit chain are the database's).
    """
    log.info("starting", extra={"event": "SERVER_STARTING", "host": settings.host, "port": settings.port,
                                "workers": workers})
    if workers == 1:
        uvicorn.Server(uvicorn_config(settings, create_app(settings))).run()
        return
    os.environ[_SPEC_ENV] = json.dumps(asdict(spec))
    metrics_dir = settings.data_dir / f"metrics-{os.getpid()}"  # fresh per run: stale samples never count
    metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ[metrics.MULTIPROCESS_ENV] = str(metrics_dir)
    config = uvicorn_config(settings, "safeguarding.server:app_from_environment", factory=True, workers=workers)
    socket = config.bind_socket()
    Multiprocess(config, sockets=[socket]).run()
