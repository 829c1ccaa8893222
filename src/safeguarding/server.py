"""Serving over HTTPS: one process, or several workers started by a lean supervisor (supervisor.py).

The protocol (client certificates, bounded request heads) and the uvicorn configuration are protocol.py's.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from . import logs, metrics, supervisor
from .api.pipeline import Endpoint
from .app import create_app
from .domain.clock import Clock
from .protocol import listen_options, uvicorn_config
from .proxy import ProxyHeaders
from .retry_after import RetryAfter
from .sandbox.scenarios import with_scenarios
from .security.gateway import GatewayRole
from .settings import Settings, file_settings, sandbox_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeSpec:
    """How to rebuild the settings in a worker process (workers re-read configuration, never share state)."""

    sandbox: bool
    data_dir: str
    config: str | None
    host: str
    port: int
    database_url: str | None
    clock_file: str | None = None
    log_format: str = "auto"

    def settings(self) -> Settings:
        if not self.sandbox:  # a file, or the environment alone
            settings = file_settings(Path(self.config) if self.config else None, host=self.host, port=self.port,
                                     database_url=self.database_url)
            return replace(settings, log_format=self.log_format)
        return sandbox_settings(Path(self.data_dir), host=self.host, port=self.port, database_url=self.database_url,
                                log_format=self.log_format)

    def clock(self) -> Clock | None:
        """The sandbox's controllable clock when asked for (``--clock-file``); never outside the sandbox."""
        if self.clock_file is None or not self.sandbox:
            return None
        from .sandbox.clock import FileOffsetClock

        return FileOffsetClock(Path(self.clock_file))


_SPEC_ENV = "SAFEGUARDING_SERVE_SPEC"


def app_from_environment() -> Any:
    """The app factory each worker process calls (``uvicorn ... --factory``)."""
    spec = ServeSpec(**json.loads(os.environ[_SPEC_ENV]))
    settings = spec.settings()
    logs.configure(settings.log_level, settings.log_format)
    return settled(service_app(settings, spec.clock()))


A = TypeVar("A")


def service_app(settings: Settings, clock: Clock | None = None) -> Any:
    """The service's ASGI app, behind the trusted proxies' header handling when proxies are configured."""
    app = create_app(settings, clock)
    if settings.sandbox:
        explain_refusals(app.routes)
    served = with_scenarios(app, settings.sandbox)  # the sandbox's error simulation (nothing outside it)
    served = RetryAfter(served)  # an unreachable store, PDS or identity provider: every 503 says when to retry
    served = ProxyHeaders(served, settings.proxy) if settings.proxy.trusted else served
    return GatewayRole(served, settings.gateway) if settings.gateway else served  # the peer as connected


def explain_refusals(routes: Iterable[Any]) -> None:
    """The sandbox's endpoints tell a refused caller the precise reason its token was refused."""
    for route in routes:
        endpoint = getattr(route, "endpoint", None)
        if isinstance(endpoint, Endpoint):
            endpoint.explain_refusals = True
        explain_refusals(getattr(route, "routes", None) or ())


def settled(app: A) -> A:
    """Hand ``app`` over once everything it loaded at start-up is out of the garbage collector's way.

    The modules, FHIR models and tables a server loads are some 100,000 objects that live as long as the
    process; a full collection walks them all (~40 ms here), about every thousand requests, and that
    was a p99 spike and ~60 us a request on average. Frozen, only objects made since are collected.
    """
    gc.collect()
    gc.freeze()
    return app


class _BannerServer(uvicorn.Server):
    """The sandbox's server: prints the banner (banner.py) once it listens."""

    def __init__(self, config: uvicorn.Config, settings: Settings) -> None:
        super().__init__(config)
        self._settings = settings

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            # The banner lists the sandbox's test patients and a token command: it is for a person at a
            # terminal (console logs), never for a log collector (JSON lines hold no NHS number at all).
            if not logs.console_wanted(self._settings.log_format):
                log.info("sandbox ready", extra={"event": "SANDBOX_READY"})
                return
            from .banner import sandbox_banner

            for handler in logging.getLogger().handlers:
                handler.flush()
            sys.stderr.write(sandbox_banner(self._settings))
            sys.stderr.flush()


def serve(settings: Settings, spec: ServeSpec, workers: int = 1) -> None:
    """Serve until SIGTERM/SIGINT; requests in flight are finished (up to 30 s) before exiting.

    With several workers, each is a separate process with its own store connections; nothing that
    matters for correctness lives in a process (uniqueness and the audit chain are the database's).
    """
    log.info("starting", extra={"event": "SERVER_STARTING", "host": settings.host, "port": settings.port,
                                "workers": workers})
    if spec.sandbox:  # `sandbox describe` reports the address this server runs on
        from .sandbox.setup import record_address

        record_address(settings.data_dir, settings.host, settings.port)
    if workers == 1:
        server = uvicorn.Server(uvicorn_config(settings, settled(service_app(settings, spec.clock()))))
        if settings.sandbox:
            server = _BannerServer(server.config, settings)
        server.run()
        return
    os.environ[_SPEC_ENV] = json.dumps(asdict(spec))
    metrics_dir = settings.data_dir / f"metrics-{os.getpid()}"  # fresh per run: stale samples never count
    metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ[metrics.MULTIPROCESS_ENV] = str(metrics_dir)
    # The supervisor only starts and watches the workers: this process becomes a fresh interpreter that imports
    # uvicorn and the protocol, not the service it loaded to set up (~90 MB it would hold for nothing).
    banner = None
    if settings.sandbox and logs.console_wanted(settings.log_format):  # as _BannerServer's, for a person
        from .banner import sandbox_banner

        banner = sandbox_banner(settings)
    os.environ[supervisor.ENV] = json.dumps({"listen": listen_options(settings), "workers": workers,
                                             "app": "safeguarding.server:app_from_environment",
                                             "log_level": settings.log_level, "log_format": settings.log_format,
                                             "banner": banner})
    logging.shutdown()  # pending lines written before the image is replaced
    os.execv(sys.executable, [sys.executable, "-m", "safeguarding.supervisor"])  # noqa: S606
