"""The audit spool: events kept on local disk while the store cannot take them reach the chain once it can, including
those a process left behind when it stopped during an outage (both stores)."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from safeguarding.audit.chain import verify
from safeguarding.audit.spool import AuditSpool
from safeguarding.domain.audit import AuditEvent
from safeguarding.store.interface import StoreUnavailable
from safeguarding.store.sql import SqlStore

from .test_contract import event


def _down(events: list[AuditEvent]) -> None:
    raise StoreUnavailable()


def test_events_left_by_a_process_during_an_outage_join_the_chain(store_url: str, audit_key: bytes,
                                                                  tmp_path: Path) -> None:
    spool_dir = tmp_path / "audit-spool"
    during = AuditSpool(spool_dir, _down, interval=0.05)  # a process whose database is down
    kept = [event(n) for n in range(3)]
    for item in kept:
        during.keep(item)
    assert stat.S_IMODE(during.path.stat().st_mode) == 0o600 and stat.S_IMODE(spool_dir.stat().st_mode) == 0o700
    during.close()  # it stops before the database returns: its file stays
    assert during.path.read_bytes().count(b"\n") == 3

    store = SqlStore.open(store_url, audit_key, spool_dir=spool_dir)  # the next process, the database back
    try:
        store.run(lambda tx: tx.append_audit(event(99)))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and during.path.exists():
            time.sleep(0.1)
        assert not during.path.exists()
        records = list(store.audit_records())
        assert verify(audit_key, records, *store.audit_head()).ok
        assert {r.event.request_id for r in records} >= {item.request_id for item in kept}
        assert len(records) == 4
    finally:
        store.close()
    assert list(spool_dir.glob("*.jsonl")) == []  # its own file, empty, removed at close


def test_a_store_without_a_spool_says_so(store: SqlStore) -> None:
    with pytest.raises(StoreUnavailable):
        store.spool_audit(event(1))
