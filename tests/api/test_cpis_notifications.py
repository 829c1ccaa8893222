"""The local authorities' notification feed (GET /notifications, POST /notifications/$acknowledge) and
missed-appointment alerts (POST /Communication): delivered at least once, until acknowledged, and
never to another authority."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from ..support import NHS_SYSTEM, Server, assert_outcome, fhir
from .cpis_helpers import (
    ACCESS_DENIED_TEXT,
    GP,
    GP_SYSTEM_ASID,
    JSON,
    SBC,
    SBC_ASID,
    TCC,
    TCC_ASID,
    acknowledge,
    care_teams,
    clinician,
    drain,
    feed,
    give_plan,
    matches,
    pending_for,
)

ALERT_SYSTEM = "https://safeguarding.invalid/fhir/CodeSystem/cpis-alert-type"


def child_with_plan(server: Server, asid: str = SBC_ASID) -> str:
    child = server.add_patient()
    give_plan(server, child, asid=asid)
    return child


def ref(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def alert_body(nhs: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Communication", "status": "completed",
                            "subject": {"identifier": {"system": NHS_SYSTEM, "value": nhs}},
                            "payload": [{"contentString": "Did not attend the fracture clinic on Monday"}]}
    body.update(extra)
    return body


def raise_alert(server: Server, body: Any, headers: dict[str, str] | None = None,
                content_type: str = JSON) -> httpx.Response:
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    with server.client() as client:
        return client.post(f"{server.cpis}/Communication", content=content,
                           headers={**(headers if headers is not None else clinician(server)),
                                    "Content-Type": content_type})


def test_the_feed_is_a_searchset_for_the_calling_authority_only(server: Server) -> None:
    drain(server, SBC_ASID)
    drain(server, TCC_ASID)
    ours, theirs = child_with_plan(server, SBC_ASID), child_with_plan(server, TCC_ASID)
    care_teams(server, ours)
    care_teams(server, theirs)
    response = feed(server, SBC_ASID)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
    bundle = fhir(response)
    assert bundle.type == "searchset" and bundle.total == 1
    assert bundle.link[0].url == f"{server.cpis}/notifications"
    assert [(e.search.mode, e.resource.get_resource_type()) for e in bundle.entry] == [
        ("match", "AuditEvent"), ("include", "PractitionerRole")]
    event = bundle.entry[0].resource
    assert event.entity[0].what.identifier.value == ours
    assert bundle.entry[0].fullUrl == f"{server.cpis}/AuditEvent/{event.id}"
    assert bundle.entry[1].resource.practitioner.display == "Dr Erin Sandbox"
    [tcc_event] = matches(feed(server, TCC_ASID))
    assert tcc_event["entity"][0]["what"]["identifier"]["value"] == theirs


def test_notifications_are_redelivered_until_acknowledged(server: Server) -> None:
    drain(server, SBC_ASID)
    child = child_with_plan(server)
    care_teams(server, child)
    first = matches(feed(server, SBC_ASID))
    second = matches(feed(server, SBC_ASID))
    assert len(first) == 1 and first == second  # polling alone takes nothing
    response = acknowledge(server, SBC_ASID, [ref(first[0])])
    assert response.status_code == 200
    result = fhir(response)
    assert result.get_resource_type() == "Parameters"
    assert response.json() == {"resourceType": "Parameters", "parameter": [
        {"name": "acknowledged", "valueInteger": 1},
        {"name": "notification", "valueReference": {"reference": ref(first[0])}}]}
    assert matches(feed(server, SBC_ASID)) == []
    again = acknowledge(server, SBC_ASID, [ref(first[0])])  # acknowledging twice is harmless
    assert again.json()["parameter"] == [{"name": "acknowledged", "valueInteger": 0}]
    [stored] = server.stored(lambda store: [n for n in store.read_notifications(SBC) if n.event_id == first[0]["id"]])
    assert stored.acknowledged_at is not None


def test_one_authority_cannot_acknowledge_anothers_notification(server: Server) -> None:
    drain(server, TCC_ASID)
    child = child_with_plan(server, TCC_ASID)
    care_teams(server, child)
    [theirs] = pending_for(server, TCC_ASID, child)
    response = acknowledge(server, SBC_ASID, [ref(theirs)])
    assert response.status_code == 200 and response.json()["parameter"] == [{"name": "acknowledged",
                                                                            "valueInteger": 0}]
    assert pending_for(server, TCC_ASID, child) == [theirs]


def test_feed_paging_by_count_oldest_first(server: Server) -> None:
    drain(server, SBC_ASID)
    children = [child_with_plan(server) for _ in range(3)]
    for child in children:
        care_teams(server, child)
    page = fhir(feed(server, SBC_ASID, _count="2"))
    assert page.total == 3
    events = [e.resource for e in page.entry if e.search.mode == "match"]
    assert [e.entity[0].what.identifier.value for e in events] == children[:2]
    acknowledge(server, SBC_ASID, [f"{server.cpis}/AuditEvent/{e.id}" for e in events])  # fullUrl form too
    rest = matches(feed(server, SBC_ASID, _count="2"))
    assert [e["entity"][0]["what"]["identifier"]["value"] for e in rest] == children[2:]
    for bad in ("0", "101", "two", "-1"):
        assert_outcome(feed(server, SBC_ASID, _count=bad), 400, "INVALID_SEARCH_DATA",
                       "_count must be a whole number from 1 to 100")


def test_only_local_authority_systems_read_or_acknowledge_a_feed(server: Server) -> None:
    denied = ("ACCESS_DENIED", ACCESS_DENIED_TEXT)
    with server.client(server.system_cert(GP_SYSTEM_ASID)) as client:
        assert_outcome(client.get(f"{server.cpis}/notifications"), 403, *denied, issue_type="forbidden")
    with server.client() as client:
        assert_outcome(client.get(f"{server.cpis}/notifications"), 403, *denied, issue_type="forbidden")
        assert_outcome(client.get(f"{server.cpis}/notifications", headers=clinician(server)), 403, *denied,
                       issue_type="forbidden")
        body = json.dumps({"resourceType": "Parameters", "parameter": [
            {"name": "notification", "valueReference": {"reference": "AuditEvent/00000000-0000-0000-0000-000000000000"}}
        ]})
        assert_outcome(client.post(f"{server.cpis}/notifications/$acknowledge", content=body,
                                   headers={"Content-Type": JSON}), 403, *denied, issue_type="forbidden")


@pytest.mark.parametrize("parameters", [
    [],
    [{"name": "notification", "valueString": "AuditEvent/00000000-0000-0000-0000-000000000000"}],
    [{"name": "event", "valueReference": {"reference": "AuditEvent/00000000-0000-0000-0000-000000000000"}}],
    [{"name": "notification", "valueReference": {"reference": "Patient/00000000-0000-0000-0000-000000000000"}}],
    [{"name": "notification", "valueReference": {"reference": "AuditEvent/not-an-id"}}],
])
def test_malformed_acknowledgements_are_refused(server: Server, parameters: list[dict[str, Any]]) -> None:
    with server.client(server.system_cert(SBC_ASID)) as client:
        response = client.post(f"{server.cpis}/notifications/$acknowledge",
                               content=json.dumps({"resourceType": "Parameters", "parameter": parameters}),
                               headers={"Content-Type": JSON})
    assert_outcome(response, 400, "INVALID_RESOURCE",
                   "Parameters must hold 1 to 100 parameters named notification, each a valueReference to an "
                   "AuditEvent or Communication from the feed")


# Missed-appointment alerts -------------------------------------------------------------------------------


def test_a_missed_appointment_alert_reaches_the_responsible_authority(server: Server) -> None:
    drain(server, SBC_ASID)
    drain(server, TCC_ASID)
    child = child_with_plan(server, SBC_ASID)
    response = raise_alert(server, alert_body(child), clinician(server, **{"X-Request-ID": "cpis-alert-1"}))
    assert response.status_code == 201, response.text
    created = fhir(response)
    assert response.headers["location"] == f"{server.cpis}/Communication/{created.id}/_history/1"
    assert created.status == "completed"
    assert [(c.system, c.code) for c in created.category[0].coding] == [(ALERT_SYSTEM, "missed-appointment")]
    assert created.subject.identifier.value == child
    assert [r.identifier.value for r in created.recipient] == [SBC]
    assert created.sender.reference == "#author"
    assert created.contained[0].practitioner.display == "Dr Erin Sandbox"
    assert created.payload[0].contentString == "Did not attend the fracture clinic on Monday"
    [delivered] = pending_for(server, SBC_ASID, child)
    assert delivered["resourceType"] == "Communication" and delivered["id"] == created.id
    assert delivered == response.json()
    assert pending_for(server, TCC_ASID, child) == []
    [record] = server.audit_for("cpis-alert-1")
    assert (record.event.interaction, record.event.status, record.event.nhs_number, record.event.resource_id) == (
        "missed-appointment", 201, child, created.id)
    acknowledge(server, SBC_ASID, [ref(delivered)])
    assert pending_for(server, SBC_ASID, child) == []


def test_an_alert_for_a_child_with_two_authorities_reaches_both_each_seeing_only_itself(server: Server) -> None:
    child = child_with_plan(server, SBC_ASID)
    give_plan(server, child, "LAC", asid=TCC_ASID)
    drain(server, SBC_ASID)
    drain(server, TCC_ASID)
    response = raise_alert(server, alert_body(child, payload=None), clinician(server, ("B0170",), GP))
    assert response.status_code == 201
    assert sorted(r["identifier"]["value"] for r in response.json()["recipient"]) == [SBC, TCC]
    [to_sbc] = pending_for(server, SBC_ASID, child)
    [to_tcc] = pending_for(server, TCC_ASID, child)
    assert [r["identifier"]["value"] for r in to_sbc["recipient"]] == [SBC]
    assert [r["identifier"]["value"] for r in to_tcc["recipient"]] == [TCC]
    assert "payload" not in to_sbc


def test_alert_refusals_change_nothing(server: Server) -> None:
    drain(server, SBC_ASID)
    no_plan, child = server.add_patient(), child_with_plan(server)
    cases: list[tuple[Any, dict[str, str] | None, int, str, str, str]] = [
        (alert_body(no_plan), None, 400, "invalid", "VALIDATION_ERROR",
         "The child has no active child protection plan"),
        (alert_body("9990000124"), None, 400, "invalid", "INVALID_VALUE", "Invalid NHS number"),
        (alert_body(child, subject={"reference": "Patient/1"}), None, 400, "invalid", "INVALID_VALUE",
         "Invalid NHS number"),
        (alert_body(child, status="in-progress"), None, 400, "invalid", "UNSUPPORTED_VALUE",
         "Status must be completed"),
        (alert_body(child, category=[{"coding": [{"system": "http://snomed.info/sct", "code": "1"}]}]), None, 400,
         "invalid", "UNSUPPORTED_VALUE", f"Category must be missed-appointment of {ALERT_SYSTEM}"),
        (alert_body(child, payload=[{"contentString": "x" * 1001}]), None, 400, "invalid", "VALIDATION_ERROR",
         "payload must be at most one contentString of up to 1000 characters"),
        (alert_body(child), clinician(server, ("B0370",)), 403, "forbidden", "ACCESS_DENIED", ACCESS_DENIED_TEXT),
        (alert_body(child), {}, 401, "login", "ACCESS_DENIED",
         "Missing or invalid access token (sandbox only: no bearer token)"),
        ({"resourceType": "Flag"}, None, 400, "invalid", "INVALID_RESOURCE",
         "The request body must be a Communication resource"),
        ('<Communication xmlns="http://hl7.org/fhir"><colour value="x"/></Communication>', None, 400, "invalid",
         "INVALID_RESOURCE", "The Communication does not conform to FHIR R4"),
    ]
    for body, headers, status, issue_type, code, diagnostics in cases:
        content_type = "application/fhir+xml" if isinstance(body, str) else JSON
        assert_outcome(raise_alert(server, body, headers, content_type), status, code, diagnostics,
                       issue_type=issue_type)
    assert pending_for(server, SBC_ASID, child) == []
    assert pending_for(server, SBC_ASID, no_plan) == []


def test_an_alert_in_xml_with_the_category_given(server: Server) -> None:
    child = child_with_plan(server)
    xml = (f'<Communication xmlns="http://hl7.org/fhir"><status value="completed"/><category><coding>'
           f'<system value="{ALERT_SYSTEM}"/><code value="missed-appointment"/></coding></category>'
           f'<subject><identifier><system value="{NHS_SYSTEM}"/><value value="{child}"/></identifier></subject>'
           f'</Communication>')
    response = raise_alert(server, xml, clinician(server, Accept="application/fhir+xml"), "application/fhir+xml")
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/fhir+xml; charset=utf-8"
    assert b"<Communication" in response.content
