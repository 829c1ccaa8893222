"""Every request is audited exactly once, allowed or refused; the chain detects tampering."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import httpx
from sqlalchemy import text

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


def _verify(server: Server) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "safeguarding", "audit", "verify", "--data-dir", str(server.data_dir)],
                          capture_output=True, text=True, env=server.env)


def _sql(server: Server, statement: str, **params: object) -> list[dict[str, object]]:
    """Raw SQL on the server's own database, as an attacker with database access would use it."""
    store = server.store()
    try:
        with store.engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [dict(row._mapping) for row in result] if result.returns_rows else []
    finally:
        store.close()


def test_audit_verify_passes_and_detects_an_edited_row(server: Server, client: httpx.Client) -> None:
    client.get(f"{server.fgm}/metadata")
    ok = _verify(server)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    result = json.loads(ok.stdout)
    assert result["ok"] is True and result["checked"] > 3

    [original] = _sql(server, "SELECT status, outcome FROM audit_events WHERE seq = 3")
    _sql(server, "UPDATE audit_events SET status = 200, outcome = 'TAMPERED' WHERE seq = 3")
    try:
        tampered = _verify(server)
        assert tampered.returncode == 1
        answer = json.loads(tampered.stdout)
        assert isinstance(answer.pop("checkpoints"), int)  # how many were written by now depends on the clock
        assert answer == {"ok": False, "checked": 2, "problem": "record content does not match its hash", "seq": 3}
    finally:
        _sql(server, "UPDATE audit_events SET status = :status, outcome = :outcome WHERE seq = 3", **original)
    assert _verify(server).returncode == 0


def test_audit_verify_detects_removed_records(server: Server, client: httpx.Client) -> None:
    client.get(f"{server.fgm}/metadata")
    [last] = _sql(server, "SELECT * FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)")
    _sql(server, "DELETE FROM audit_events WHERE seq = :seq", seq=last["seq"])
    try:
        result = _verify(server)
        assert result.returncode == 1
        # Caught by the recorded head, or first by a checkpoint written after the removed record (the clock decides).
        assert json.loads(result.stdout)["problem"] in ("chain ends before its recorded head (records removed)",
                                                        f"chain ends before checkpoint {last['seq']} (records removed "
                                                        "and the head rolled back)")
    finally:
        columns = ", ".join(last)
        _sql(server, f"INSERT INTO audit_events ({columns}) VALUES ({', '.join(':' + c for c in last)})", **last)
    assert _verify(server).returncode == 0
