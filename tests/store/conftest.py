"""The ``store`` fixture: every contract test runs against SQLite and against a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from safeguarding.store.sql import SqlStore, make_engine, sqlite_url, upgrade_schema

from ..pg import create_database, drop_database

AUDIT_KEY = bytes(range(32))  # fixed 32-byte key: chains are reproducible across runs


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade_schema(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, migrated, empty database of the requested kind."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "store.db")
        _migrate(url)
        yield url
        return
    url = create_database()
    try:
        _migrate(url)
        yield url
    finally:
        drop_database(url)


@pytest.fixture()
def audit_key() -> bytes:
    return AUDIT_KEY


@pytest.fixture()
def store(store_url: str, audit_key: bytes) -> Iterator[SqlStore]:
    opened = SqlStore.open(store_url, audit_key)
    try:
        yield opened
    finally:
        opened.close()
