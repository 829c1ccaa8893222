"""Every request is audited exactly once, allowed or refused; the chain detects tampering."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from ..support import Server, flag_body


def _rid() -> str:
    return f"audit-{uuid.uuid4()}"


def test_allowed_search_is_audited_with_caller_and_patient(server: Server, client: httpx.Client) -> None:
    rid = _rid()
    response = client.get(f"{server.fgm}/Flag", params={"patient:identifier": "9990000018"},
                          headers=server.headers(("B0370",), **{"X-Request-ID": rid, "X-Correlation-ID": "corr-1",
                                                               "TraceID": "trace-9"}))
    assert response.status_code == 200
    assert response.headers["x-correlation-id"] == "corr-1"
    [record] = server.audit_for(rid)
    event = record.event
    assert (event.api, event.interaction, event.status, event.outcome) == ("fgm-r4", "search", 200, "OK")
    assert (event.correlation_id, event.trace_id) == ("corr-1", "trace-9")
    assert (event.user_id, event.role_profile_id, event.org_code) == ("555021935107", "555021936108", "RR8")
    assert event.role_code == "S8000:G8000:R8000"
    assert event.nhs_number == "9990000018"
    assert event.resource_id == response.json()["entry"][0]["resource"]["id"]


def test_refused_requests_are_audited(server: Server, client: httpx.Client) -> None:
    rid = _rid()
    response = client.get(f"{server.fgm}/Flag", params={"patient:identifier": "9990000018"},
                          headers={"X-Request-ID": rid})
    assert response.status_code == 401
    [record] = server.audit_for(rid)
    assert (record.event.status, record.event.outcome, record.event.user_id) == (401, "ACCESS_DENIED", None)

    rid = _rid()
    child = server.add_patient()
    response = client.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(child)),
                           headers={**server.headers(("B0370",), **{"X-Request-ID": rid}),
                                    "Content-Type": "application/fhir+json"})
    assert response.status_code == 403
    [record] = server.audit_for(rid)
    assert (record.event.interaction, record.event.status, record.event.outcome) == ("create", 403, "ACCESS_DENIED")
    assert record.event.user_id == "555021935107"

    rid = _rid()
    response = client.get(f"{server.fgm}/Flag", params={"patient:identifier": "9990000017"},
                          headers=server.headers(**{"X-Request-ID": rid}))
    assert response.status_code == 400
    [record] = server.audit_for(rid)
    assert (record.event.status, record.event.outcome) == (400, "INVALID_SEARCH_DATA")


def test_create_is_audited_in_the_same_transaction(server: Server, client: httpx.Client) -> None:
    rid = _rid()
    child = server.add_patient()
    response = client.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(child)),
                           headers={**server.headers(**{"X-Request-ID": rid}), "Content-Type": "application/fhir+json"})
    assert response.status_code == 201
    [record] = server.audit_for(rid)
    assert (record.event.interaction, record.event.status, record.event.outcome) == ("create", 201, "OK")
    assert (record.event.nhs_number, record.event.resource_id) == (child, response.json()["id"])
    rid2 = _rid()
    again = client.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(child)),
                        headers={**server.headers(**{"X-Request-ID": rid2}), "Content-Type": "application/fhir+json"})
    assert again.status_code == 400
    [refusal] = server.audit_for(rid2)
    assert (refusal.event.status, refusal.event.outcome, refusal.event.nhs_number) == (400, "VALIDATION_ERROR", child)


def _verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "safeguarding", "audit", "verify", "--data-dir", str(data_dir)],
                          capture_output=True, text=True)


def test_audit_verify_passes_and_detects_a_tampered_row(server: Server, client: httpx.Client,
                                                        tmp_path: Path) -> None:
    client.get(f"{server.fgm}/metadata")
    ok = _verify(server.data_dir)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    result = json.loads(ok.stdout)
    assert result["ok"] is True and result["checked"] > 0

    copy = tmp_path / "copy"
    shutil.copytree(server.data_dir, copy, ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm"))
    source = sqlite3.connect(server.data_dir / "safeguarding.db")
    target = sqlite3.connect(copy / "safeguarding.db")
    source.backup(target)
    source.close()
    target.execute("UPDATE audit_events SET outcome = 'OK', status = 200 WHERE seq = 3")
    target.commit()
    target.close()
    tampered = _verify(copy)
    assert tampered.returncode == 1
    assert json.loads(tampered.stdout) == {"ok": False, "checked": 2,
                                          "problem": "record content does not match its hash", "seq": 3}


def test_audit_verify_detects_removed_records(server: Server, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(server.data_dir, copy, ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm"))
    source = sqlite3.connect(server.data_dir / "safeguarding.db")
    target = sqlite3.connect(copy / "safeguarding.db")
    source.backup(target)
    source.close()
    last = target.execute("SELECT max(seq) FROM audit_events").fetchone()[0]
    target.execute("DELETE FROM audit_events WHERE seq = ?", (last,))
    target.commit()
    target.close()
    result = _verify(copy)
    assert result.returncode == 1
    assert json.loads(result.stdout)["problem"] == "chain ends before its recorded head (records removed)"
