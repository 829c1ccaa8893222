"""The access history (GET /cpis/FHIR/R4/AuditEvent) and the recording rules (DECISIONS, DIGEST A13):
who records, scheduled versus unscheduled, only CareTeam records, the current access included, the
newest 25, the same user within 24 hours once, and no plan -> nothing recorded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from safeguarding.domain.cpis import Access

from ..support import NHS_SYSTEM, Server, assert_outcome, fhir
from .cpis_helpers import (
    ACCESS_DENIED_TEXT,
    ED,
    GP,
    SBC_ASID,
    TCC_ASID,
    batch,
    care_teams,
    careplan,
    clinician,
    days,
    drain,
    give_plan,
    history,
    matches,
    other_user,
    pending_for,
    upload,
)


def accesses(server: Server, nhs: str) -> list[Access]:
    return server.stored(lambda store: store.read_accesses(nhs))


def child_with_plan(server: Server, asid: str = SBC_ASID) -> str:
    child = server.add_patient()
    give_plan(server, child, asid=asid)
    return child


@pytest.mark.parametrize(("activities", "user", "header"), [
    (("B0107",), ED, "false"),  # a B0107 caller may still say the access is scheduled
    (("B0170",), GP, "true"),  # B0170 only: always scheduled, whatever the header says
    (("B0170",), GP, None),
])
def test_scheduled_access_leaves_history_and_feed_unchanged(server: Server, activities: tuple[str, ...],
                                                           user: dict[str, str], header: str | None) -> None:
    child = child_with_plan(server)
    drain(server, SBC_ASID)
    response = care_teams(server, child, clinician(server, activities, user, unscheduled=header))
    assert response.status_code == 200 and response.json()["total"] == 1
    assert accesses(server, child) == []
    assert fhir(history(server, child)).total == 0
    assert pending_for(server, SBC_ASID, child) == []


@pytest.mark.parametrize("header", ["true", None])
def test_unscheduled_access_adds_one_entry_and_one_notification(server: Server, header: str | None) -> None:
    child = child_with_plan(server)
    drain(server, SBC_ASID)
    drain(server, TCC_ASID)
    response = care_teams(server, child, clinician(server, unscheduled=header, **{"X-Request-ID": f"ct-{header}"}))
    assert response.status_code == 200 and response.json()["total"] == 1
    [recorded] = accesses(server, child)
    [event] = matches(history(server, child))
    assert event["id"] == recorded.id
    [notification] = pending_for(server, SBC_ASID, child)
    assert notification == event
    assert pending_for(server, TCC_ASID, child) == []  # never the other authority's
    [audit] = server.audit_for(f"ct-{header}")
    assert (audit.event.interaction, audit.event.nhs_number, audit.event.resource_id) == (
        "careteam-search", child, recorded.id)


def test_the_history_bundle_with_included_practitioner_roles(server: Server) -> None:
    child = child_with_plan(server)
    first = other_user(1)
    first["org_name"] = "Sandbox Hospital"
    care_teams(server, child, clinician(server, user=first))
    care_teams(server, child, clinician(server, user=ED))
    response = history(server, child, clinician(server, ("B0170",), GP, TraceID="b2acfb2c-c40e-4f9a-8916"))
    assert response.status_code == 200
    assert response.headers["traceid"] == "b2acfb2c-c40e-4f9a-8916"
    bundle = fhir(response)
    assert bundle.type == "searchset" and bundle.total == 2
    assert bundle.link[0].url == f"{server.cpis}/AuditEvent?patient:identifier={NHS_SYSTEM}|{child}"
    modes = [(e.search.mode, e.resource.get_resource_type()) for e in bundle.entry]
    assert modes == [("match", "AuditEvent"), ("match", "AuditEvent"), ("include", "PractitionerRole"),
                     ("include", "PractitionerRole")]
    newest, older = bundle.entry[0].resource, bundle.entry[1].resource
    assert newest.recorded > older.recorded  # newest first
    roles = {f"PractitionerRole/{e.resource.id}": e.resource for e in bundle.entry[2:]}
    for entry in bundle.entry:
        assert entry.fullUrl == f"{server.cpis}/{entry.resource.get_resource_type()}/{entry.resource.id}"
    assert (newest.type.system, newest.type.code) == ("http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle",
                                                      "access")
    assert newest.action == "R" and newest.outcome == "0"
    [agent] = newest.agent
    assert agent.requestor is True and agent.role[0].coding[0].code == "AUT"
    assert newest.source.observer.reference == agent.who.reference
    assert newest.entity[0].what.identifier.value == child
    role = roles[agent.who.reference]
    assert role.practitioner.display == "Dr Erin Sandbox"
    assert role.practitioner.identifier.value == ED["user_id"]
    assert role.identifier[0].value == ED["role_profile_id"]
    assert (role.code[0].coding[0].code, role.code[0].coding[0].display) == ("R8000", "Nurse Access Role")
    assert role.organization.identifier.value == "RR8" and role.organization.display == "Sandbox Hospital"
    older_role = roles[older.agent[0].who.reference]
    assert older_role.practitioner.display == "Dr Test 1" and older_role.organization.display == "Sandbox Hospital"


def test_reading_the_history_records_nothing(server: Server) -> None:
    child = child_with_plan(server)
    for header in ("true", None):
        headers = clinician(server)
        if header:
            headers["IsUnscheduledAccessEvent"] = header
        assert fhir(history(server, child, headers)).total == 0
    assert accesses(server, child) == []


def test_the_current_access_is_in_the_history_it_returns(server: Server) -> None:
    child = child_with_plan(server)
    care_teams(server, child)
    [latest] = matches(history(server, child))
    [recorded] = accesses(server, child)
    assert latest["id"] == recorded.id


def test_no_plan_means_an_empty_answer_and_nothing_recorded(server: Server) -> None:
    child = server.add_patient()
    assert care_teams(server, child).json()["total"] == 0
    assert accesses(server, child) == []
    assert history(server, child).json()["total"] == 0
    ended = child_with_plan(server)
    care_teams(server, ended)
    upload(server, batch(careplan(ended, status="completed", end=days(-1))))
    assert history(server, ended).json()["total"] == 0  # the history is shared only while a plan is
    care_teams(server, ended)
    assert len(accesses(server, ended)) == 1  # the access made while the plan was active, and no more


def test_the_newest_25_are_listed(server: Server) -> None:
    child = child_with_plan(server)
    for n in range(27):
        assert care_teams(server, child, clinician(server, user=other_user(100 + n))).status_code == 200
    assert len(accesses(server, child)) == 27
    response = history(server, child)
    bundle = fhir(response)
    assert bundle.total == 25
    events = [e.resource for e in bundle.entry if e.search.mode == "match"]
    roles = {e.resource.id: e.resource for e in bundle.entry if e.search.mode == "include"}
    assert len(events) == len(roles) == 25
    names = [roles[e.agent[0].who.reference.split("/")[1]].practitioner.display for e in events]
    assert names == [f"Dr Test {100 + n}" for n in range(26, 1, -1)]  # newest first; the two oldest dropped


def test_the_same_user_within_24_hours_is_listed_once(server: Server) -> None:
    child = child_with_plan(server)
    drain(server, SBC_ASID)
    for _ in range(3):
        care_teams(server, child, clinician(server, user=ED))
    care_teams(server, child, clinician(server, user=other_user(1)))
    assert len(accesses(server, child)) == 4  # every unscheduled access is recorded...
    events = matches(history(server, child))
    assert len(events) == 2  # ...and listed once per user per 24 hours (the first of the repeats)
    stored = accesses(server, child)
    assert events[1]["id"] == stored[0].id
    assert len(pending_for(server, SBC_ASID, child)) == 4  # each recorded access is notified


def test_a_child_with_two_authorities_notifies_both(server: Server) -> None:
    child = child_with_plan(server, SBC_ASID)
    give_plan(server, child, "LAC", asid=TCC_ASID)
    drain(server, SBC_ASID)
    drain(server, TCC_ASID)
    assert care_teams(server, child).json()["total"] == 2
    [to_sbc] = pending_for(server, SBC_ASID, child)
    [to_tcc] = pending_for(server, TCC_ASID, child)
    assert to_sbc == to_tcc and to_sbc["resourceType"] == "AuditEvent"


def test_history_errors(server: Server) -> None:
    child = child_with_plan(server)
    with server.client() as client:
        for params in ({"patient": "9990000124"}, {"patient:identifier": "https://x.org|" + child}):
            assert_outcome(client.get(f"{server.cpis}/AuditEvent", params=params, headers=clinician(server)), 400,
                           "INVALID_SEARCH_DATA", "Invalid NHS number")
        bad_header = client.get(f"{server.cpis}/AuditEvent", params={"patient": child},
                                headers=clinician(server, unscheduled="maybe"))
        assert_outcome(bad_header, 400, "PRECONDITION_FAILED", "Missing or invalid head parameter")
        denied = client.get(f"{server.cpis}/AuditEvent", params={"patient": child},
                            headers=clinician(server, ("B0370",)))
        assert_outcome(denied, 403, "ACCESS_DENIED", ACCESS_DENIED_TEXT, issue_type="forbidden")
        assert client.get(f"{server.cpis}/AuditEvent", params={"patient": child}).status_code == 401
    assert accesses(server, child) == []


def test_concurrent_unscheduled_accesses_are_each_recorded_once(server: Server) -> None:
    child = child_with_plan(server)
    headers = [clinician(server, user=other_user(300 + n)) for n in range(10)]

    def access(n: int) -> httpx.Response:
        return care_teams(server, child, headers[n])

    with ThreadPoolExecutor(10) as pool:
        statuses = [r.status_code for r in pool.map(access, range(10))]
    assert statuses == [200] * 10
    assert len(accesses(server, child)) == 10
    assert fhir(history(server, child)).total == 10
