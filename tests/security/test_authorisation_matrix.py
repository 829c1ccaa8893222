"""Who may do what: every endpoint and method with every kind of caller, in one table.

Callers: nobody; a clinician whose role holds every activity but the one needed; a clinician holding
exactly that one; the sandbox's GP system (client certificate of a clinical system); local authority
B; local authority A. Each cell is either allowed (the interaction really happens, with its success
status) or the exact refusal of that API. After every refusal nothing in the store has changed, and
every request that reached an API was audited exactly once with the status it was answered with.

CP-IS rows (and the two local authorities) are in the table once the CP-IS routes are served.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from ..api.test_fgm_dstu2 import message
from ..support import NHS_SYSTEM, Server, flag_body, removal_body
from .helpers import (
    BAD_TOKEN,
    CPIS_DENIED,
    FGM_DENIED,
    GP_ASID,
    cert_of,
    cpis_landed,
    dstu2_refusal,
    r4_refusal,
    systems_of_kind,
)

GIRL = "9990000018"  # sandbox girl with an active indicator (read only here)
CALLERS = ("nobody", "clinician-without", "clinician-with", "gp-system", "la-b", "la-a")
ACTIVITIES = ("B0370", "B0380", "B0107", "B0170")
CPIS = "/cpis/FHIR/R4"
FGM = "/fgm/FHIR/R4"
SNOMED = "http://snomed.info/sct"
CPP = "342191000000101"  # child protection plan (England-ChildProtectionPlan)


@dataclass(frozen=True)
class Allowed:
    status: int
    check: Callable[[httpx.Response, Context, str], None] | None = None


@dataclass(frozen=True)
class R4Refusal:
    status: int
    issue_type: str
    code: str
    diagnostics: str

    def check(self, response: httpx.Response) -> None:
        assert r4_refusal(response) == (self.status, self.issue_type, self.code, self.diagnostics)
        assert not any(h.startswith("access-control-") for h in response.headers)
        if self.status == 401:
            assert response.headers["www-authenticate"] == 'Bearer realm="safeguarding"'  # no token was sent


@dataclass(frozen=True)
class Dstu2Refusal:
    status: int
    code: str
    diagnostics: str

    def check(self, response: httpx.Response) -> None:
        assert dstu2_refusal(response) == (self.status, self.code, self.diagnostics)


Expect = Allowed | R4Refusal | Dstu2Refusal

NO_TOKEN = R4Refusal(401, "login", "ACCESS_DENIED", BAD_TOKEN)
FGM_FORBIDDEN = R4Refusal(403, "forbidden", "ACCESS_DENIED", FGM_DENIED)
CPIS_FORBIDDEN = R4Refusal(403, "forbidden", "ACCESS_DENIED", CPIS_DENIED)
NOT_ALLOWED = R4Refusal(405, "not-supported", "METHOD_NOT_ALLOWED", "Method not allowed for this resource")
NO_CERTIFICATE = Dstu2Refusal(403, "ASID_CHECK_FAILED", "A client certificate is required")
DSTU2_NOT_ALLOWED = Dstu2Refusal(
    405, "INVALID_PARAMETER", "Only POST is allowed: FGM-IS messages are posted to /fhir/fgm/query, create or delete")
NOT_REGISTERED_FOR = Dstu2Refusal(403, "ASID_CHECK_FAILED", "The sending system is not registered for this interaction")


def everyone(expect: Expect) -> dict[str, Expect]:
    return dict.fromkeys(CALLERS, expect)


def clinicians_only(allowed: Allowed, forbidden: R4Refusal) -> dict[str, Expect]:
    """Bearer-token interactions: a client certificate is no credential for them."""
    return {**everyone(NO_TOKEN), "clinician-without": forbidden, "clinician-with": allowed}


def gp_system_only(allowed: Allowed) -> dict[str, Expect]:
    """DSTU2 messaging: the GP system is registered for every FGM-IS interaction, the authorities for none."""
    return {**everyone(NO_CERTIFICATE), "gp-system": allowed, "la-b": NOT_REGISTERED_FOR, "la-a": NOT_REGISTERED_FOR}


def authorities_only(allowed_b: Allowed, allowed_a: Allowed) -> dict[str, Expect]:
    return {**everyone(CPIS_FORBIDDEN), "la-b": allowed_b, "la-a": allowed_a}


@dataclass
class Context:
    """What the rows act on: fresh children, an indicator, a plan and notification of authority A."""

    server: Server
    authorities: dict[str, dict[str, Any]]  # la-a / la-b -> system and authority facts
    children: dict[str, str] = field(default_factory=dict)
    flag: dict[str, Any] = field(default_factory=dict)
    alert_id: str = ""
    store: Any = None  # one store for every snapshot (opening one per cell is slow)


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: Callable[[Context], str]
    expect: dict[str, Expect]
    grants: tuple[str, ...] = ()  # activities that allow it: "without" holds every other, "with" the first only
    body: Callable[[Context, str], tuple[bytes, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    audited: bool = True
    cpis: bool = False


# --- bodies ---------------------------------------------------------------------------------------------


def _json(document: Any, content_type: str = "application/fhir+json") -> tuple[bytes, str]:
    return json.dumps(document).encode(), content_type


def _dstu2(kind: str, child: str | Callable[[Context], str]) -> Callable[[Context, str], tuple[bytes, str]]:
    def build(ctx: Context, caller: str) -> tuple[bytes, str]:
        source = ctx.authorities[caller]["asid"] if caller.startswith("la-") else GP_ASID
        nhs = child(ctx) if callable(child) else ctx.children.get(child, child)
        return message(kind, nhs, source=source), "text/xml; charset=utf-8"

    return build


def _careplan_batch(ctx: Context, caller: str) -> tuple[bytes, str]:
    """A plan of the uploading authority (authority A's for callers that are not one)."""
    authority = ctx.authorities[caller if caller.startswith("la-") else "la-a"]
    return _json(_batch(ctx.children["uploaded"], authority))


def _batch(child: str, authority: dict[str, Any]) -> dict[str, Any]:
    plan = {
        "resourceType": "CarePlan", "status": "active", "intent": "plan",
        "category": [{"coding": [{"system": SNOMED, "code": CPP}]}],
        "subject": {"identifier": {"system": NHS_SYSTEM, "value": child}},
        "period": {"start": (date.today() - timedelta(days=30)).isoformat()},
        "contained": [{"resourceType": "CareTeam", "id": "la", "name": authority["name"],
                       "telecom": [{"system": "phone", "value": authority["office_phone"], "use": "work"}]}],
        "careTeam": [{"reference": "#la"}],
    }
    return {"resourceType": "Bundle", "type": "batch",
            "entry": [{"resource": plan, "request": {"method": "POST", "url": "CarePlan"}}]}


def _alert(ctx: Context, caller: str) -> tuple[bytes, str]:
    return _json({"resourceType": "Communication", "status": "completed",
                  "subject": {"identifier": {"system": NHS_SYSTEM, "value": ctx.children["on-plan"]}},
                  "payload": [{"contentString": "Did not attend"}]})


def _acknowledgement(ctx: Context, caller: str) -> tuple[bytes, str]:
    return _json({"resourceType": "Parameters", "parameter": [
        {"name": "notification", "valueReference": {"reference": f"Communication/{ctx.alert_id}"}}]})


# --- checks of allowed cells ---------------------------------------------------------------------------


def _resource(resource_type: str, **fields: Any) -> Callable[[httpx.Response, Context, str], None]:
    def check(response: httpx.Response, ctx: Context, caller: str) -> None:
        body = response.json()
        assert body["resourceType"] == resource_type, body
        for name, value in fields.items():
            assert body[name] == value, (name, body)

    return check


def _uploaded(response: httpx.Response, ctx: Context, caller: str) -> None:
    body = response.json()
    assert (body["resourceType"], body["type"]) == ("Bundle", "batch-response")
    [entry] = body["entry"]
    assert entry["response"]["status"].startswith("2"), entry


def _alerted(response: httpx.Response, ctx: Context, caller: str) -> None:
    ctx.alert_id = response.json()["id"]


def _feed(response: httpx.Response, ctx: Context, caller: str) -> None:
    subjects = set()
    for entry in response.json().get("entry", []):
        resource = entry["resource"]
        if resource["resourceType"] == "Communication":
            subjects.add(resource["subject"]["identifier"]["value"])
        elif resource["resourceType"] == "AuditEvent":
            subjects.add(resource["entity"][0]["what"]["identifier"]["value"])
    # Authority B never sees what concerns only authority A's plan; A sees it.
    assert (ctx.children["on-plan"] in subjects) == (caller == "la-a"), (caller, subjects)


def _acknowledged(count: int) -> Callable[[httpx.Response, Context, str], None]:
    def check(response: httpx.Response, ctx: Context, caller: str) -> None:
        assert response.json()["parameter"][0] == {"name": "acknowledged", "valueInteger": count}

    return check


# --- the table -----------------------------------------------------------------------------------------

ROWS: list[Row] = [
    Row("health: ping", "GET", lambda c: "/_ping", everyone(Allowed(200)), audited=False),
    Row("health: status", "GET", lambda c: "/_status", everyone(Allowed(200)), audited=False),
    Row("health: metrics", "GET", lambda c: "/_metrics", everyone(Allowed(200)), audited=False),
    Row("openapi", "GET", lambda c: "/_openapi", everyone(Allowed(200)), audited=False),
    Row("fgm r4 metadata", "GET", lambda c: f"{FGM}/metadata", everyone(Allowed(200))),
    Row("fgm r4 search", "GET", lambda c: f"{FGM}/Flag?patient:identifier={NHS_SYSTEM}|{GIRL}",
        clinicians_only(Allowed(200, _resource("Bundle", total=1)), FGM_FORBIDDEN), grants=("B0370",)),
    Row("fgm r4 read", "GET", lambda c: f"{FGM}/Flag/{c.flag['id']}",
        clinicians_only(Allowed(200, _resource("Flag", status="active")), FGM_FORBIDDEN), grants=("B0370",)),
    Row("fgm r4 vread", "GET", lambda c: f"{FGM}/Flag/{c.flag['id']}/_history/1",
        clinicians_only(Allowed(200, _resource("Flag", status="active")), FGM_FORBIDDEN), grants=("B0370",)),
    Row("fgm r4 create", "POST", lambda c: f"{FGM}/Flag",
        clinicians_only(Allowed(201, _resource("Flag", status="active")), FGM_FORBIDDEN), grants=("B0380",),
        body=lambda c, _: _json(flag_body(c.children["fgm-create"]))),
    Row("fgm r4 remove", "PUT", lambda c: f"{FGM}/Flag/{c.flag['id']}",
        clinicians_only(Allowed(200, _resource("Flag", status="entered-in-error")), FGM_FORBIDDEN),
        grants=("B0380",), body=lambda c, _: _json(removal_body(c.flag))),
    Row("fgm r4 delete (not routed)", "DELETE", lambda c: f"{FGM}/Flag/{c.flag['id']}", everyone(NOT_ALLOWED),
        audited=False),
    Row("fgm r4 CORS preflight", "OPTIONS", lambda c: f"{FGM}/Flag", everyone(NOT_ALLOWED), audited=False,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}),
    Row("fgm dstu2 query", "POST", lambda c: "/fhir/fgm/query", gp_system_only(Allowed(200)),
        body=_dstu2("query", GIRL)),
    Row("fgm dstu2 create", "POST", lambda c: "/fhir/fgm/create", gp_system_only(Allowed(201)),
        body=_dstu2("create", "dstu2-create")),
    Row("fgm dstu2 delete", "POST", lambda c: "/fhir/fgm/delete", gp_system_only(Allowed(200)),
        body=_dstu2("delete", "dstu2-delete")),
    Row("fgm dstu2 query by GET (not routed)", "GET", lambda c: "/fhir/fgm/query", everyone(DSTU2_NOT_ALLOWED),
        audited=False),
    Row("cpis metadata", "GET", lambda c: f"{CPIS}/metadata", everyone(Allowed(200)), cpis=True),
    Row("cpis CareTeam search (unscheduled)", "GET",
        lambda c: f"{CPIS}/CareTeam?patient:identifier={NHS_SYSTEM}|{c.children['on-plan']}",
        clinicians_only(Allowed(200, _resource("Bundle", total=1)), CPIS_FORBIDDEN), grants=("B0107", "B0170"),
        cpis=True),
    Row("cpis CareTeam read (unscheduled)", "GET",
        lambda c: f"{CPIS}/CareTeam/{c.server.stored(lambda st: st.read_plans(c.children['on-plan']))[0].id}",
        clinicians_only(Allowed(200, _resource("CareTeam", status="active")), CPIS_FORBIDDEN),
        grants=("B0107", "B0170"), cpis=True),
    Row("cpis AuditEvent search", "GET",
        lambda c: f"{CPIS}/AuditEvent?patient:identifier={NHS_SYSTEM}|{c.children['on-plan']}",
        clinicians_only(Allowed(200, _resource("Bundle")), CPIS_FORBIDDEN), grants=("B0107", "B0170"), cpis=True),
    Row("cpis missed-appointment alert", "POST", lambda c: f"{CPIS}/Communication",
        clinicians_only(Allowed(201, _alerted), CPIS_FORBIDDEN), grants=("B0107", "B0170"), body=_alert, cpis=True),
    Row("cpis missed-appointment alert read (its author)", "GET", lambda c: f"{CPIS}/Communication/{c.alert_id}",
        clinicians_only(Allowed(200, _resource("Communication", status="completed")), CPIS_FORBIDDEN),
        grants=("B0107", "B0170"), cpis=True),
    Row("cpis plan upload", "POST", lambda c: CPIS, authorities_only(Allowed(200, _uploaded), Allowed(200, _uploaded)),
        body=_careplan_batch, cpis=True),
    Row("cpis notification feed", "GET", lambda c: f"{CPIS}/notifications",
        authorities_only(Allowed(200, _feed), Allowed(200, _feed)), cpis=True),
    # B may not take A's notification (nothing acknowledged); then A takes it.
    Row("cpis acknowledge", "POST", lambda c: f"{CPIS}/notifications/$acknowledge",
        authorities_only(Allowed(200, _acknowledged(0)), Allowed(200, _acknowledged(1))), body=_acknowledgement,
        cpis=True),
]


# --- running it ------------------------------------------------------------------------------------------


def _prepare(server: Server, with_cpis: bool) -> Context:
    authorities: dict[str, dict[str, Any]] = {}
    if with_cpis:
        systems = {s["asid"]: s for s in systems_of_kind(server, "local-authority")}
        facts = [a for a in server.facts.get("authorities", []) if a["asid"] in systems]
        for caller, authority in zip(("la-a", "la-b"), facts, strict=False):
            authorities[caller] = {**authority, **systems[authority["asid"]]}
    ctx = Context(server, authorities)
    for name in ("fgm-create", "fgm-remove", "dstu2-create", "dstu2-delete", "on-plan", "uploaded"):
        ctx.children[name] = server.add_patient()
    with server.client() as http:
        headers = {**server.headers(("B0380",)), "Content-Type": "application/fhir+json"}
        for child in ("fgm-remove", "dstu2-delete"):
            response = http.post(f"{server.fgm}/Flag", json=flag_body(ctx.children[child]), headers=headers)
            assert response.status_code == 201, response.text
            if child == "fgm-remove":
                ctx.flag = response.json()
    if with_cpis:
        with server.client(cert=cert_of(authorities["la-a"])) as http:
            response = http.post(server.cpis, content=json.dumps(_batch(ctx.children["on-plan"], authorities["la-a"])),
                                 headers={"Content-Type": "application/fhir+json"})
        _uploaded(response, ctx, "la-a")
    return ctx


def _snapshot(ctx: Context) -> Any:
    """Everything the table's requests could change."""

    def read(store: Any) -> Any:
        state: list[Any] = [store.read_history(nhs) for nhs in ctx.children.values()]
        if ctx.authorities:
            state += [store.read_plans(nhs) for nhs in ctx.children.values()]
            state += [store.read_accesses(nhs) for nhs in ctx.children.values()]
            state += [store.read_notifications(a["ods"]) for a in ctx.authorities.values()]
        return state

    return read(ctx.store)


def _send(ctx: Context, row: Row, caller: str, request_id: str) -> httpx.Response:
    server = ctx.server
    cert = None
    headers = {"X-Request-ID": request_id, **row.headers}
    if caller.startswith("clinician-"):
        activities = row.grants[:1] if caller == "clinician-with" else tuple(a for a in ACTIVITIES
                                                                             if a not in row.grants)
        headers["Authorization"] = f"Bearer {server.token(activities)}"
    elif caller == "gp-system":
        cert = next(cert_of(s) for s in server.facts["systems"] if s["asid"] == GP_ASID)
    elif caller.startswith("la-"):
        cert = cert_of(ctx.authorities[caller])
    content = None
    if row.body is not None:
        content, headers["Content-Type"] = row.body(ctx, caller)
    with server.client(cert=cert) as http:
        return http.request(row.method, f"{server.base}{row.path(ctx)}", content=content, headers=headers)


def test_every_endpoint_and_method_with_every_caller(server: Server) -> None:
    with_cpis = cpis_landed(server)
    callers = CALLERS if with_cpis else tuple(c for c in CALLERS if not c.startswith("la-"))
    rows = [row for row in ROWS if with_cpis or not row.cpis]
    ctx = _prepare(server, with_cpis)
    ctx.store = server.store()
    try:
        _run(ctx, rows, callers)
    finally:
        ctx.store.close()


def _run(ctx: Context, rows: list[Row], callers: tuple[str, ...]) -> None:
    audited: dict[str, int] = {}
    before = _snapshot(ctx)
    for row in rows:
        for caller in callers:
            cell = f"{row.name} / {caller}"
            request_id = f"sec-matrix-{uuid.uuid4()}"
            expect = row.expect[caller]
            response = _send(ctx, row, caller, request_id)
            if isinstance(expect, Allowed):
                assert response.status_code == expect.status, (cell, response.text)
                if expect.check is not None:
                    expect.check(response, ctx, caller)
                before = _snapshot(ctx)
            else:
                try:
                    expect.check(response)
                except AssertionError as exc:
                    raise AssertionError(f"{cell}: {response.status_code} {response.text[:400]}") from exc
                assert _snapshot(ctx) == before, f"{cell}: a refusal changed the store"
            if row.audited:
                audited[request_id] = response.status_code
    # Every request that reached an API was audited exactly once, with the status it was answered with.
    records = [(r.event.request_id, r.event.status) for r in ctx.store.audit_records()
               if r.event.request_id in audited]
    assert sorted(records) == sorted(audited.items())
