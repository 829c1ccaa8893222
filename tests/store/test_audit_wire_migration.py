"""Migration 0003 (the audit event's wire facts) on both stores: a chain written before it still verifies
after it, and records written after it carry the facts under the same chain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from safeguarding.audit.chain import GENESIS, link_hash, verify
from safeguarding.domain.audit import AuditEvent
from safeguarding.store import schema as t
from safeguarding.store.sql import SqlStore, make_engine, upgrade_schema

from .migrated import database_at

KEY = bytes(range(32))
OLD_FIELDS = [name for name in AuditEvent.__dataclass_fields__ if name != "wire"]


@pytest.fixture(params=["sqlite", "postgresql"])
def url_at_0002(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_at("0002", request.param, tmp_path) as url:
        yield url


def test_a_chain_from_before_the_migration_verifies_after_it(url_at_0002: str) -> None:
    engine = make_engine(url_at_0002)
    old = {"recorded_at": "2026-11-01T10:00:00.000000Z", "api": "fgm-r4", "interaction": "search", "status": 200,
           "outcome": "OK", "request_id": "r-1", "correlation_id": None, "trace_id": "t-1", "system_asid": None,
           "system_ods": None, "user_id": "u", "role_profile_id": "p", "role_code": None, "org_code": "RR8",
           "nhs_number": "9990000018", "resource_id": None}
    assert list(old) == OLD_FIELDS
    digest = link_hash(KEY, 1, GENESIS, old)  # exactly as the service hashed it before the wire facts
    try:
        with engine.begin() as conn:
            conn.execute(_old_insert(old, digest))  # the table as 0002 left it: no wire column
            conn.execute(update(t.audit_head).where(t.audit_head.c.id == 1).values(seq=1, hash=digest))
        upgrade_schema(engine)
    finally:
        engine.dispose()
    store = SqlStore.open(url_at_0002, KEY)
    try:
        [record] = list(store.audit_records())
        assert record.event.wire is None and record.event.nhs_number == "9990000018"
        head = store.audit_head()
        assert verify(KEY, store.audit_records(), *head).ok
        new = AuditEvent(recorded_at="2026-11-02T10:00:00.000000Z", api="fgm-r4", interaction="search", status=503,
                         outcome="SERVICE_UNAVAILABLE", request_id="r-2", wire='{"ids":["X-Request-ID"]}')
        with store.transaction() as tx:
            tx.append_audit(new)
        records = list(store.audit_records())
        assert [r.event.wire for r in records] == [None, '{"ids":["X-Request-ID"]}']
        assert verify(KEY, store.audit_records(), *store.audit_head()).ok
    finally:
        store.close()


def _old_insert(old: dict[str, object], digest: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import column, table

    old_table = table("audit_events", *(column(name) for name in ["seq", "prev_hash", "hash", *OLD_FIELDS]))
    return insert(old_table).values(seq=1, prev_hash=GENESIS, hash=digest, **old)
