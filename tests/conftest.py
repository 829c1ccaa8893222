from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import Server, free_port

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real sandbox server for the session (SQLite), over HTTPS. Tests never change the sandbox's own
    patients: they add fresh ones."""
    ARTIFACTS.mkdir(exist_ok=True)
    running = Server(tmp_path_factory.mktemp("sandbox"), free_port(), ARTIFACTS / "server-sqlite.log")
    running.log_path.write_bytes(b"")
    running.start()
    yield running
    running.stop()


@pytest.fixture()
def client(server: Server) -> Iterator:  # type: ignore[type-arg]
    with server.client() as http:
        yield http
