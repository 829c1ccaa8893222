"""Helpers for the CP-IS tests: uploads as a local authority, clinician searches, the notification feed."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import httpx

from ..support import NHS_SYSTEM, Server

JSON = "application/fhir+json"
SNOMED = "http://snomed.info/sct"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
CPR_SYSTEM = "urn:oid:2.16.840.1.113883.2.1.3.2.4.17.473"
CPF_SYSTEM = "urn:oid:2.16.840.1.113883.2.1.3.2.4.17.474"
PLAN_CODES = {"CPP": "342191000000101", "LAC": "764841000000100", "UCP": "818901000000100"}
PLAN_DISPLAYS = {"CPP": "Subject to child protection plan", "LAC": "Looked after child",
                 "UCP": "Unborn child subject to child protection plan"}
ACCESS_DENIED_TEXT = "Access has been denied to process this request"

# The sandbox's local authorities and one of its clinical systems (docs/sandbox.md).
SBC, SBC_ASID, SBC_NAME = "SBC01", "300000000101", "Sandbox City Council"
TCC, TCC_ASID, TCC_NAME = "TCC02", "300000000202", "Testshire County Council"
GP_SYSTEM_ASID = "047192794544"
AUTHORITY_NAMES = {SBC_ASID: SBC_NAME, TCC_ASID: TCC_NAME}
AUTHORITY_ODS = {SBC_ASID: SBC, TCC_ASID: TCC}

# The sandbox's emergency department clinician (B0107) and GP (B0170).
ED = {"user_id": "555021941103", "role_profile_id": "555021942104", "org_code": "RR8", "name": "Dr Erin Sandbox",
      "org_name": "Sandbox Hospital"}
GP = {"user_id": "555021943105", "role_profile_id": "555021944106", "org_code": "B86022", "name": "Dr Gus Sandbox"}

TODAY = date.today()


def days(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def careplan(nhs: str, kind: str = "CPP", *, status: str = "active", start: str | None = None,
             end: str | None = None, name: str = SBC_NAME, office: str | None = "01134960001",
             mobile: str | None = "07700900001", authority_ods: str | None = None,
             team: bool = True) -> dict[str, Any]:
    telecom = [{"system": "phone", "value": value, "use": use}
               for value, use in ((office, "work"), (mobile, "mobile")) if value]
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "status": status,
        "intent": "plan",
        "category": [{"coding": [{"system": SNOMED, "code": PLAN_CODES[kind]}]}],
        "subject": {"identifier": {"system": NHS_SYSTEM, "value": nhs}},
        "period": {"start": start or days(-30), **({"end": end} if end else {})},
    }
    if team:
        care_team: dict[str, Any] = {"resourceType": "CareTeam", "id": "la", "name": name, "telecom": telecom}
        if authority_ods:
            care_team["managingOrganization"] = [{"identifier": {"system": ODS, "value": authority_ods}}]
        resource["contained"] = [care_team]
        resource["careTeam"] = [{"reference": "#la"}]
    return resource


def batch(*resources: dict[str, Any], method: str = "POST", url: str = "CarePlan") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch",
            "entry": [{"resource": r, "request": {"method": method, "url": url}} for r in resources]}


def upload(server: Server, body: Any, *, asid: str | None = SBC_ASID, content_type: str = JSON,
           **headers: str) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    with server.client(server.system_cert(asid) if asid else None) as client:
        return client.post(server.cpis, content=content, headers={"Content-Type": content_type, **headers})


def outcomes(response: httpx.Response) -> list[tuple[str, str]]:
    """Each entry's (response.status, CP-IS record code)."""
    assert response.status_code == 200, response.text
    return [(e["response"]["status"], e["response"]["outcome"]["issue"][0]["details"]["coding"][0]["code"])
            for e in response.json()["entry"]]


def file_code(response: httpx.Response) -> str:
    [tag] = response.json()["meta"]["tag"]
    assert tag["system"] == CPF_SYSTEM
    return str(tag["code"])


def give_plan(server: Server, nhs: str, kind: str = "CPP", *, asid: str = SBC_ASID, **fields: Any) -> None:
    """Upload one plan as the authority and insist that it applied."""
    response = upload(server, batch(careplan(nhs, kind, name=AUTHORITY_NAMES[asid], **fields)), asid=asid)
    assert outcomes(response)[0][1] == "CPR06", response.text


def clinician(server: Server, activities: tuple[str, ...] = ("B0107",), user: dict[str, str] | None = None,
              unscheduled: str | None = None, **extra: str) -> dict[str, str]:
    who = dict(user or ED)
    headers = {"Authorization": f"Bearer {server.token(activities, **who)}", **extra}
    if unscheduled is not None:
        headers["IsUnscheduledAccessEvent"] = unscheduled
    return headers


def other_user(n: int) -> dict[str, str]:
    """A distinct clinician (user and role) for tests that need many."""
    return {"user_id": f"5550300{n:05d}", "role_profile_id": f"5550400{n:05d}", "org_code": "RR8",
            "name": f"Dr Test {n}"}


def care_teams(server: Server, nhs: str, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
    with server.client() as client:
        return client.get(f"{server.cpis}/CareTeam",
                          params={"patient:identifier": f"{NHS_SYSTEM}|{nhs}", **params},
                          headers=headers if headers is not None else clinician(server))


def history(server: Server, nhs: str, headers: dict[str, str] | None = None) -> httpx.Response:
    with server.client() as client:
        return client.get(f"{server.cpis}/AuditEvent", params={"patient:identifier": f"{NHS_SYSTEM}|{nhs}"},
                          headers=headers if headers is not None else clinician(server))


def feed(server: Server, asid: str, **params: str) -> httpx.Response:
    with server.client(server.system_cert(asid)) as client:
        return client.get(f"{server.cpis}/notifications", params=params)


def acknowledge(server: Server, asid: str, references: list[str]) -> httpx.Response:
    body = {"resourceType": "Parameters",
            "parameter": [{"name": "notification", "valueReference": {"reference": r}} for r in references]}
    with server.client(server.system_cert(asid)) as client:
        return client.post(f"{server.cpis}/notifications/$acknowledge", content=json.dumps(body),
                           headers={"Content-Type": JSON})


def matches(bundle_response: httpx.Response) -> list[dict[str, Any]]:
    assert bundle_response.status_code == 200, bundle_response.text
    return [e["resource"] for e in bundle_response.json().get("entry", []) if e["search"]["mode"] == "match"]


def drain(server: Server, asid: str) -> None:
    """Acknowledge everything pending in the authority's feed (other tests' notifications)."""
    for _ in range(100):
        pending = matches(feed(server, asid))
        if not pending:
            return
        response = acknowledge(server, asid, [f"{r['resourceType']}/{r['id']}" for r in pending])
        assert response.status_code == 200, response.text
    raise AssertionError("the feed did not drain")


def pending_for(server: Server, asid: str, nhs: str) -> list[dict[str, Any]]:
    """The authority's pending notifications about one child (the feed is shared by every test)."""
    found = []
    for resource in matches(feed(server, asid)):
        if resource["resourceType"] == "AuditEvent":
            subject = resource["entity"][0]["what"]["identifier"]["value"]
        else:
            subject = resource["subject"]["identifier"]["value"]
        if subject == nhs:
            found.append(resource)
    return found
