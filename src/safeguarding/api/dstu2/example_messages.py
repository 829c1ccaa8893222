"""The NHS guide's example request messages (query v2, create, delete), with ``{{variables}}`` where a
sandbox or a client puts its own values: ``nhs_number``, ``source_asid``, ``service_asid``, ``birth_date``,
``assessment_date``, ``delete_reason``, and ``$guid`` / ``$isoTimestamp`` (Postman's fresh values)."""

from __future__ import annotations

from importlib import resources
from typing import Final

from .codes import EVENT_CREATE_REQUEST, EVENT_DELETE_REQUEST, EVENT_QUERY_REQUEST

ACTIONS: Final = {"query": EVENT_QUERY_REQUEST, "create": EVENT_CREATE_REQUEST, "delete": EVENT_DELETE_REQUEST}


def template(kind: str) -> str:
    """The example message for ``kind`` (query, create, delete), with its variables."""
    if kind not in ACTIONS:
        raise ValueError(f"no example message for {kind!r}")
    return resources.files(__package__).joinpath("examples", f"{kind}.xml").read_text(encoding="utf-8")
