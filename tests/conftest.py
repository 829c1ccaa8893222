from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .pg import create_database, drop_database
from .support import Server, free_port

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _start(tmp_path_factory: pytest.TempPathFactory, backend: str, database_url: str | None) -> Server:
    ARTIFACTS.mkdir(exist_ok=True)
    running = Server(tmp_path_factory.mktemp(f"sandbox-{backend}"), free_port(), ARTIFACTS / f"server-{backend}.log",
                     database_url=database_url)
    running.log_path.write_bytes(b"")
    return running.start()


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real sandbox server on its embedded SQLite store, over HTTPS, for the whole session. Tests never change
    the sandbox's own patients: they add fresh ones."""
    running = _start(tmp_path_factory, "sqlite", None)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def postgresql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The same, on a throwaway PostgreSQL database (created here, dropped at the end)."""
    url = create_database()
    running = _start(tmp_path_factory, "postgresql", url)
    yield running
    running.stop()
    drop_database(url)


@pytest.fixture(scope="session")
def server(sqlite_server: Server) -> Server:
    """The default server (SQLite). tests/api overrides this to run every HTTP test on both stores."""
    return sqlite_server


@pytest.fixture()
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http
