"""Serving over HTTPS: one process, or several workers started by a lean supervisor (supervisor.py).

The protocol (client certificates, bounded request heads) and the uvicorn configuration are protocol.py's.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import uvicorn
from starlette.applications import Starlette

from . import logs, metrics, supervisor
from .app import create_app
from .domain.clock import Clock
from .protocol import listen_options, uvicorn_config
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

    def settings(self) -> Settings:
        if self.config is not None:
            return file_settings(Path(self.config), host=self.host, port=self.port, database_url=self.database_url)
        return sandbox_settings(Path(self.data_dir), host=self.host, port=self.port, database_url=self.database_url)

    def clock(self) -> Clock | None:
        """The sandbox's controllable clock when asked for (``--clock-file``); never outside the sandbox."""
        if self.clock_file is None or not self.sandbox:
            return None
        from .sandbox.clock import FileOffsetClock

        return FileOffsetClock(Path(self.clock_file))


_SPEC_ENV = "SAFEGUARDING_SERVE_SPEC"


def app_from_environment() -> Starlette:
    """The app factory each worker process calls (``uvicorn ... --factory``)."""
    spec = ServeSpec(**json.loads(os.environ[_SPEC_ENV]))
    settings = spec.settings()
    logs.configure(settings.log_level)
    return settled(create_app(settings, spec.clock()))


A = TypeVar("A")


def settled(app: A) -> A:
    """Hand ``app`` over once everything it loaded at start-up is out of the garbage collector's way.

    The modules, FHIR models and tables a server loads are some 100,000 objects that live as long as the
    process; a full collection walks them all (~40 ms here), about every thousand requests, and that
    was a p99 spike and ~60 us a request on average. Frozen, only objects made since are collected.
    """
    gc.collect()
    gc.freeze()
    return app


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
        uvicorn.Server(uvicorn_config(settings, settled(create_app(settings, spec.clock())))).run()
        return
    os.environ[_SPEC_ENV] = json.dumps(asdict(spec))
    metrics_dir = settings.data_dir / f"metrics-{os.getpid()}"  # fresh per run: stale samples never count
    metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ[metrics.MULTIPROCESS_ENV] = str(metrics_dir)
    # The supervisor only starts and watches the workers: this process becomes a fresh interpreter that imports
    # uvicorn and the protocol, not the service it loaded to set up (~90 MB it would hold for nothing).
    os.environ[supervisor.ENV] = json.dumps({"listen": listen_options(settings), "workers": workers,
                                             "app": "safeguarding.server:app_from_environment",
                                             "log_level": settings.log_level})
    logging.shutdown()  # pending lines written before the image is replaced
    os.execv(sys.executable, [sys.executable, "-m", "safeguarding.supervisor"])  # noqa: S606
