"""Checkpoints outside the database catch a truncated chain whose head was rolled back to match, which the chain
alone cannot (the attack needs write access to the database only, not the audit key). Both stores, and the real
``safeguarding audit verify`` command."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from safeguarding.audit.chain import verify
from safeguarding.audit.checkpoints import Checkpointer, read_checkpoints
from safeguarding.store.sql import SqlStore, make_engine

from .test_contract import event


def _verify_command(data_dir: Path, url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    done = subprocess.run([sys.executable, "-m", "safeguarding", "audit", "verify", "--data-dir", str(data_dir),
                           "--database-url", url], capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout)


def _sandbox_like(tmp_path: Path, audit_key: bytes) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "audit.key").write_bytes(audit_key)
    return data_dir


def test_truncation_with_the_head_rolled_back_is_caught(store_url: str, audit_key: bytes, tmp_path: Path) -> None:
    data_dir = _sandbox_like(tmp_path, audit_key)
    checkpoints = data_dir / "audit-checkpoints.log"
    store = SqlStore.open(store_url, audit_key, checkpoints=checkpoints)
    for n in range(10):
        store.run(lambda tx, n=n: tx.append_audit(event(n)))  # type: ignore[misc]
    store.close()  # the last checkpoint: the head at shutdown
    assert stat.S_IMODE(checkpoints.stat().st_mode) == 0o600
    assert read_checkpoints(checkpoints, audit_key)[-1].seq == 10
    status, result = _verify_command(data_dir, store_url)
    assert (status, result["ok"], result["checked"]) == (0, True, 10), result

    # Someone with write access to the database (not the key): drop the newest three records, move the head back.
    engine = make_engine(store_url)
    with engine.begin() as conn:
        kept = conn.execute(text("SELECT seq, hash FROM audit_events WHERE seq = 7")).one()
        conn.execute(text("DELETE FROM audit_events WHERE seq > 7"))
        conn.execute(text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"),
                     {"seq": kept.seq, "hash": kept.hash})
    engine.dispose()
    reopened = SqlStore.open(store_url, audit_key)
    try:
        head = reopened.audit_head()
        assert verify(audit_key, reopened.audit_records(), *head).ok  # the chain alone cannot tell
    finally:
        reopened.close()

    status, result = _verify_command(data_dir, store_url)
    assert status == 1
    assert result["ok"] is False and result["checked"] == 7 and result["seq"] == 8
    assert result["problem"] == "chain ends before checkpoint 10 (records removed and the head rolled back)"


def test_an_altered_checkpoint_file_fails_verification(store_url: str, audit_key: bytes, tmp_path: Path) -> None:
    data_dir = _sandbox_like(tmp_path, audit_key)
    checkpoints = data_dir / "audit-checkpoints.log"
    store = SqlStore.open(store_url, audit_key, checkpoints=checkpoints)
    store.run(lambda tx: tx.append_audit(event(1)))
    store.close()
    line = json.loads(checkpoints.read_text().splitlines()[-1])
    checkpoints.write_text(json.dumps({**line, "seq": 0}) + "\n")  # to hide records: without the key, no valid MAC
    status, result = _verify_command(data_dir, store_url)
    assert status == 1 and result["ok"] is False
    assert result["problem"] == "checkpoint line 1 does not match its MAC"


def test_checkpoints_follow_the_head_while_it_moves(store: SqlStore, audit_key: bytes, tmp_path: Path) -> None:
    path = tmp_path / "private" / "checkpoints.log"
    checkpointer = Checkpointer(path, audit_key, store.audit_head, interval=0.1)
    try:
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        for n in range(3):
            store.run(lambda tx, n=n: tx.append_audit(event(n)))  # type: ignore[misc]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (not read_checkpoints(path, audit_key)
                                                   or read_checkpoints(path, audit_key)[-1].seq != n + 1):
                time.sleep(0.05)
            assert read_checkpoints(path, audit_key)[-1].seq == n + 1
            assert read_checkpoints(path, audit_key)[-1].hash == store.audit_head()[1]
    finally:
        checkpointer.close()
    assert [c.seq for c in read_checkpoints(path, audit_key)] == [1, 2, 3]  # only when the head moved
