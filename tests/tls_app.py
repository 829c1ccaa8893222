"""Run a small ASGI app on loopback over real TLS (uvicorn in a thread), for test doubles of national
services (an OpenID Connect provider, PDS)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from safeguarding.security import certs

from .support import free_port


@dataclass(frozen=True)
class Running:
    base: str
    ca: Path  # the CA that issued the server's certificate


@contextmanager
def serve_tls(app: ASGIApp, directory: Path) -> Iterator[Running]:
    directory.mkdir(parents=True, exist_ok=True)
    ca = certs.create_ca(directory, common_name="test double CA")
    pair = certs.issue(ca, certs.CertPair(directory / "server.pem", directory / "server.key"),
                       common_name="localhost", server_names=("localhost", "127.0.0.1"))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, ssl_certfile=str(pair.cert), ssl_keyfile=str(pair.key),
                            log_level="warning", lifespan="off", loop="asyncio", http="h11")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test TLS server did not start")
        time.sleep(0.05)
    try:
        yield Running(f"https://127.0.0.1:{port}", ca.cert)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
