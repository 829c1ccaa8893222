"""Throwaway PostgreSQL databases for tests: one fresh database per use, dropped afterwards.

The server is ``postgresql://postgres@127.0.0.1:5432/postgres`` unless ``SAFEGUARDING_TEST_POSTGRES_URL``
names another maintenance database. PostgreSQL tests never skip: if the server cannot be reached they
fail and say so (CI starts PostgreSQL before the tests).
"""

from __future__ import annotations

import os
import secrets
from typing import NoReturn

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

ADMIN_URL = os.environ.get("SAFEGUARDING_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = "sg_test_"


def _admin_engine() -> Engine:
    url = make_url(ADMIN_URL)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _unreachable(exc: Exception) -> NoReturn:
    detail = (str(exc).strip().splitlines() or [""])[0]
    pytest.fail(
        f"PostgreSQL is not reachable at {make_url(ADMIN_URL).render_as_string(hide_password=True)} "
        f"({type(exc).__name__}: {detail}). "
        "Start it (e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main start`) or set "
        "SAFEGUARDING_TEST_POSTGRES_URL; PostgreSQL tests are never skipped.",
        pytrace=False,
    )


def create_database() -> str:
    """Create an empty database ``sg_test_<random hex>`` and return its URL (``postgresql://``)."""
    name = PREFIX + secrets.token_hex(8)
    engine = _admin_engine()
    failure: SQLAlchemyError | None = None
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except SQLAlchemyError as exc:
        failure = exc
    finally:
        engine.dispose()
    if failure is not None:
        _unreachable(failure)  # outside the except block: one clear message, no chained traceback
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a database made by ``create_database``, disconnecting anyone still using it."""
    name = make_url(url).database
    if not name or not name.startswith(PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a test database")
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        engine.dispose()
