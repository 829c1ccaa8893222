"""The system registry document kept in the database (``system_registry``, one row), for PostgreSQL
deployments of several nodes (security/registry.py decides when it is used)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import orjson
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from . import schema as t
from .failures import unavailable_on

Document = dict[str, Any]


def registry_version(engine: Engine) -> int:
    """How many times the registry has changed (0: never imported)."""
    with unavailable_on(SQLAlchemyError), engine.connect() as conn:
        return int(conn.execute(select(t.system_registry.c.version).where(t.system_registry.c.id == 1)).scalar_one())


def read_registry(engine: Engine) -> tuple[int, Document | None]:
    """The version and the document (None before the first import)."""
    c = t.system_registry.c
    with unavailable_on(SQLAlchemyError), engine.connect() as conn:
        row = conn.execute(select(c.version, c.document).where(c.id == 1)).one()
    return int(row.version), orjson.loads(row.document) if row.document is not None else None


def change_registry(engine: Engine, change: Callable[[Document | None], Document | None]) -> Document | None:
    """Replace the document with ``change(current)`` under a row lock (changes from several nodes queue);
    ``change`` returning the current document unchanged (the same object) writes nothing."""
    c = t.system_registry.c
    with unavailable_on(SQLAlchemyError), engine.begin() as conn:
        row = conn.execute(select(c.version, c.document).where(c.id == 1).with_for_update()).one()
        current = orjson.loads(row.document) if row.document is not None else None
        changed = change(current)
        if changed is current or changed is None:
            return current
        conn.execute(update(t.system_registry).where(c.id == 1).values(
            version=row.version + 1, document=orjson.dumps(changed).decode(),
            changed_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds")))
        return changed
