"""A database of either store brought to an older schema revision, for the migration tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config

from safeguarding.store.sql import _MIGRATIONS, make_engine, sqlite_url

from ..pg import create_database, drop_database


@contextmanager
def database_at(revision: str, backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new database (``backend`` sqlite or postgresql) at schema ``revision``; dropped after."""
    url = sqlite_url(directory / "old.db") if backend == "sqlite" else create_database()
    engine = make_engine(url)
    try:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
        yield url
    finally:
        engine.dispose()
        if backend == "postgresql":
            drop_database(url)
