"""``RequestContext.audit_event`` fills each of AuditEvent's fields from the request (made by position: this pins
which value lands in which field)."""

from __future__ import annotations

import json
from dataclasses import fields

from safeguarding.api.wire import WireFacts
from safeguarding.domain.audit import AuditEvent
from safeguarding.domain.caller import Caller, System, SystemKind, User
from safeguarding.services.context import RequestContext


def _ctx(caller: Caller) -> RequestContext:
    return RequestContext(api="cpis-r4", interaction="careteam-search", request_id="req-1", correlation_id="corr-2",
                          trace_id="trace-3", caller=caller, nhs_number="9990000123", resource_id="res-4",
                          wire=WireFacts({"ids": ["TraceID"]}, None))


def test_a_users_request() -> None:
    user = User("555000000001", "555100000001", "RR8", role_code="R8000")
    event = _ctx(Caller(user=user)).audit_event("2026-12-07T18:00:00.000000Z", (200, "OK"))
    assert {f.name: getattr(event, f.name) for f in fields(AuditEvent)} == {
        "recorded_at": "2026-12-07T18:00:00.000000Z", "api": "cpis-r4", "interaction": "careteam-search",
        "status": 200, "outcome": "OK", "request_id": "req-1", "correlation_id": "corr-2", "trace_id": "trace-3",
        "system_asid": None, "system_ods": None, "user_id": "555000000001", "role_profile_id": "555100000001",
        "role_code": "R8000", "org_code": "RR8", "nhs_number": "9990000123", "resource_id": "res-4",
        "wire": json.dumps({"ids": ["TraceID"]}, separators=(",", ":"))}


def test_a_systems_request() -> None:
    system = System("300000000101", "SBC01", SystemKind.LOCAL_AUTHORITY)
    event = _ctx(Caller(system=system)).audit_event("t", (403, "ACCESS_DENIED"))
    assert (event.status, event.outcome, event.system_asid, event.system_ods, event.org_code, event.user_id,
            event.role_profile_id, event.role_code) == (403, "ACCESS_DENIED", "300000000101", "SBC01", "SBC01", None,
                                                        None, None)
