"""Every interaction each CapabilityStatement claims answers, as claimed; and the reads that make the CP-IS
statement (CareTeam read by id, Communication read) and the create Locations true."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ..support import NHS_SYSTEM, Server, assert_outcome, fhir, flag_body, removal_body
from .cpis_helpers import (
    GP,
    SBC_ASID,
    batch,
    careplan,
    clinician,
    days,
    give_plan,
    other_user,
    pending_for,
    upload,
)
from .test_cpis_access_history import accesses

JSON = "application/fhir+json"
Exercise = Callable[[Server, httpx.Client], httpx.Response]


def _flag(server: Server, client: httpx.Client) -> dict[str, Any]:
    response = client.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(server.add_patient())),
                           headers={**server.headers(), "Content-Type": JSON})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _shared_plan(server: Server) -> tuple[str, str]:
    child = server.add_patient()
    give_plan(server, child)
    with server.client() as client:
        response = client.get(f"{server.cpis}/CareTeam", params={"patient": child},
                              headers=clinician(server, unscheduled="false"))
    [entry] = response.json()["entry"]
    return child, entry["resource"]["id"]


def _alert(server: Server, client: httpx.Client, user: dict[str, str] | None = None) -> httpx.Response:
    child = server.add_patient()
    give_plan(server, child)
    body = {"resourceType": "Communication", "status": "completed",
            "subject": {"identifier": {"system": NHS_SYSTEM, "value": child}}}
    return client.post(f"{server.cpis}/Communication", content=json.dumps(body),
                       headers={**clinician(server, user=user), "Content-Type": JSON})


def _created_alert(server: Server, client: httpx.Client) -> dict[str, Any]:
    response = _alert(server, client)
    assert response.status_code == 201, response.text
    return dict(response.json())


# How to exercise each (resource type, interaction) a statement may claim: a request that should succeed.
FGM: dict[tuple[str, str], tuple[int, Exercise]] = {
    ("Flag", "read"): (200, lambda s, c: c.get(f"{s.fgm}/Flag/{_flag(s, c)['id']}", headers=s.headers())),
    ("Flag", "vread"): (200, lambda s, c: c.get(f"{s.fgm}/Flag/{_flag(s, c)['id']}/_history/1", headers=s.headers())),
    ("Flag", "search-type"): (200, lambda s, c: c.get(f"{s.fgm}/Flag", headers=s.headers(),
                                                      params={"patient:identifier": f"{NHS_SYSTEM}|9990000018"})),
    ("Flag", "create"): (201, lambda s, c: c.post(f"{s.fgm}/Flag", content=json.dumps(flag_body(s.add_patient())),
                                                  headers={**s.headers(), "Content-Type": JSON})),
    ("Flag", "update"): (200, lambda s, c: (lambda f: c.put(f"{s.fgm}/Flag/{f['id']}", content=json.dumps(
        removal_body(f)), headers={**s.headers(), "Content-Type": JSON, "If-Match": 'W/"1"'}))(_flag(s, c))),
}
CPIS: dict[tuple[str, str], tuple[int, Exercise]] = {
    ("CareTeam", "read"): (200, lambda s, c: c.get(f"{s.cpis}/CareTeam/{_shared_plan(s)[1]}",
                                                   headers=clinician(s, unscheduled="false"))),
    ("CareTeam", "search-type"): (200, lambda s, c: c.get(f"{s.cpis}/CareTeam", params={"patient": "9990000123"},
                                                          headers=clinician(s, unscheduled="false"))),
    ("AuditEvent", "search-type"): (200, lambda s, c: c.get(f"{s.cpis}/AuditEvent", params={"patient": "9990000123"},
                                                            headers=clinician(s))),
    ("Communication", "create"): (201, lambda s, c: _alert(s, c)),
    ("Communication", "read"): (200, lambda s, c: c.get(f"{s.cpis}/Communication/{_created_alert(s, c)['id']}",
                                                        headers=clinician(s))),
    ("Communication", "vread"): (200, lambda s, c: c.get(
        f"{s.cpis}/Communication/{_created_alert(s, c)['id']}/_history/1", headers=clinician(s))),
    ("system", "batch"): (200, lambda s, c: upload(s, batch(careplan(s.add_patient())))),
}


@pytest.mark.parametrize(("base", "exercises"), [("fgm", FGM), ("cpis", CPIS)])
def test_every_claimed_interaction_answers(server: Server, client: httpx.Client, base: str,
                                           exercises: dict[tuple[str, str], tuple[int, Exercise]]) -> None:
    statement = client.get(f"{getattr(server, base)}/metadata")
    assert statement.status_code == 200
    fhir(statement)
    [rest] = statement.json()["rest"]
    claimed = [(r["type"], i["code"]) for r in rest["resource"] for i in r.get("interaction", [])]
    claimed += [("system", i["code"]) for i in rest.get("interaction", [])]
    assert claimed and set(claimed) == set(exercises), "each claim needs its exercise here, and nothing more"
    for claim in claimed:
        status, exercise = exercises[claim]
        response = exercise(server, client)
        assert response.status_code == status, (claim, response.status_code, response.text)
    # The patient search parameter is a reference (clinical-patient), searched by :identifier or the NHS number.
    for resource in rest["resource"]:
        for param in resource.get("searchParam", []):
            assert (param["name"], param["type"]) == ("patient", "reference"), resource["type"]


def test_the_cpis_statement_no_longer_claims_a_careplan_create(server: Server, client: httpx.Client) -> None:
    [rest] = client.get(f"{server.cpis}/metadata").json()["rest"]
    [plan] = [r for r in rest["resource"] if r["type"] == "CarePlan"]
    assert "interaction" not in plan
    assert client.post(f"{server.cpis}/CarePlan", content=b"{}",
                       headers={**clinician(server), "Content-Type": JSON}).status_code == 404


# CareTeam read by id: the search's access rules and recording --------------------------------------------------


def test_careteam_read_records_an_unscheduled_access_as_the_search_does(server: Server, client: httpx.Client) -> None:
    child, plan_id = _shared_plan(server)
    assert accesses(server, child) == []
    response = client.get(f"{server.cpis}/CareTeam/{plan_id}", headers=clinician(server))
    assert response.status_code == 200, response.text
    team = fhir(response)
    assert team.id == plan_id and team.subject.identifier.value == child
    assert response.headers["etag"] == f'W/"{team.meta.versionId}"'
    [access] = accesses(server, child)
    assert access.author.user_id == "555021941103"
    assert len(pending_for(server, SBC_ASID, child)) == 1
    # scheduled (header false, or a B0170-only caller): read, nothing recorded
    assert client.get(f"{server.cpis}/CareTeam/{plan_id}", headers=clinician(server, unscheduled="false")
                      ).status_code == 200
    assert client.get(f"{server.cpis}/CareTeam/{plan_id}", headers=clinician(server, ("B0170",), GP)).status_code == 200
    assert len(accesses(server, child)) == 1


def test_careteam_read_of_a_plan_not_shared_is_404_and_records_nothing(server: Server, client: httpx.Client) -> None:
    child, plan_id = _shared_plan(server)
    ended = careplan(child, status="completed", start=days(-60), end=days(-1))
    assert upload(server, batch(ended)).status_code == 200
    for path in (plan_id, "1b0e2c0a-0000-4000-8000-000000000000", "not%20an%20id"):
        response = client.get(f"{server.cpis}/CareTeam/{path}", headers=clinician(server))
        assert_outcome(response, 404, "RESOURCE_NOT_FOUND", "Resource not found", issue_type="not-found")
    assert accesses(server, child) == []


def test_careteam_read_refusals(server: Server, client: httpx.Client) -> None:
    child, plan_id = _shared_plan(server)
    url = f"{server.cpis}/CareTeam/{plan_id}"
    assert client.get(url).status_code == 401
    assert_outcome(client.get(url, headers=clinician(server, ("B0370",))), 403, "ACCESS_DENIED",
                   "Access has been denied to process this request", issue_type="forbidden")
    assert_outcome(client.get(url, headers=clinician(server, unscheduled="maybe")), 400, "PRECONDITION_FAILED",
                   "Missing or invalid head parameter")
    assert accesses(server, child) == []


# Communication read, for its author; the create Locations resolve ------------------------------------------------


def test_an_alert_is_read_back_by_its_author_only(server: Server, client: httpx.Client) -> None:
    created = _alert(server, client)
    assert created.status_code == 201, created.text
    alert = created.json()
    assert created.headers["location"] == f"{server.cpis}/Communication/{alert['id']}/_history/1"
    read = client.get(created.headers["location"], headers=clinician(server))
    assert read.status_code == 200, read.text
    assert read.json() == alert
    assert client.get(f"{server.cpis}/Communication/{alert['id']}", headers=clinician(server)).json() == alert
    for headers, path in ((clinician(server, user=other_user(7)), alert["id"]),
                          (clinician(server), f"{alert['id']}/_history/2"),
                          (clinician(server), "1b0e2c0a-0000-4000-8000-000000000000")):
        assert_outcome(client.get(f"{server.cpis}/Communication/{path}", headers=headers), 404, "RESOURCE_NOT_FOUND",
                       "Resource not found", issue_type="not-found")


def test_the_flag_create_location_is_its_version_and_resolves(server: Server, client: httpx.Client) -> None:
    created = client.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(server.add_patient())),
                          headers={**server.headers(), "Content-Type": JSON})
    flag = created.json()
    assert created.headers["location"] == f"{server.fgm}/Flag/{flag['id']}/_history/1"
    read = client.get(created.headers["location"], headers=server.headers())
    assert read.status_code == 200 and read.json() == flag and read.headers["etag"] == 'W/"1"'
    stale = client.get(f"{server.fgm}/Flag/{flag['id']}/_history/2", headers=server.headers())
    assert_outcome(stale, 404, "RESOURCE_NOT_FOUND", "Resource not found", issue_type="not-found")
