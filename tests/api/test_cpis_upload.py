"""The local authority upload (POST /cpis/FHIR/R4, a batch Bundle of CarePlans) over real mutual TLS:
upsert, end, withdraw, each plan type, every CP-IS record code, malformed entries failing alone, and
refusals that change nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from safeguarding.domain.patients import SecurityLabel

from ..support import NHS_SYSTEM, Server, assert_outcome, fhir, invalid_check_digit
from .cpis_helpers import (
    ACCESS_DENIED_TEXT,
    CPF_SYSTEM,
    CPR_SYSTEM,
    GP_SYSTEM_ASID,
    ODS,
    PLAN_CODES,
    PLAN_DISPLAYS,
    SBC,
    SBC_ASID,
    SBC_NAME,
    SNOMED,
    TCC,
    TCC_ASID,
    TCC_NAME,
    TODAY,
    batch,
    care_teams,
    careplan,
    clinician,
    days,
    file_code,
    give_plan,
    matches,
    outcomes,
    upload,
)

NOT_IN_DEMOGRAPHICS = "9990000115"


def scheduled(server: Server) -> dict[str, str]:
    """A silent read: checking state never records an access."""
    return clinician(server, unscheduled="false")


def shared(server: Server, nhs: str) -> list[dict[str, Any]]:
    return matches(care_teams(server, nhs, scheduled(server)))


def plans(server: Server, nhs: str) -> list[Any]:
    return server.stored(lambda store: store.read_plans(nhs))


def test_upload_creates_a_plan_clinicians_then_find(server: Server) -> None:
    child = server.add_patient(age=7)
    response = upload(server, batch(careplan(child, start=days(-40))), **{"X-Request-ID": "cpis-upload-1"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
    assert response.headers["x-request-id"] == "cpis-upload-1"
    bundle = fhir(response)
    assert bundle.type == "batch-response"
    assert [(t.system, t.code, t.display) for t in bundle.meta.tag] == [(CPF_SYSTEM, "CPF02", "Successful File Upload")]
    [entry] = bundle.entry
    assert entry.response.status == "201 Created"
    assert entry.response.etag == 'W/"1"'
    [issue] = entry.response.outcome.issue
    assert (issue.severity, issue.code, issue.diagnostics) == ("information", "informational", "Plan created")
    assert [(c.system, c.code, c.display) for c in issue.details.coding] == [
        (CPR_SYSTEM, "CPR06", "Successful Record Upload")]

    [team] = shared(server, child)
    model = fhir(httpx.Response(200, json=team))
    assert model.status == "active" and model.name == SBC_NAME
    assert [(c.system, c.code, c.display) for c in model.category[0].coding] == [
        (SNOMED, PLAN_CODES["CPP"], PLAN_DISPLAYS["CPP"])]
    assert (model.subject.identifier.system, model.subject.identifier.value) == (NHS_SYSTEM, child)
    assert str(model.period.start) == days(-40) and model.period.end is None
    assert [(t.system, t.value, t.use) for t in model.telecom] == [("phone", "01134960001", "work"),
                                                                   ("phone", "07700900001", "mobile")]
    assert model.managingOrganization[0].identifier.value == SBC

    [stored] = plans(server, child)
    assert (stored.key.authority_ods, stored.key.nhs_number, stored.version) == (SBC, child, 1)
    assert stored.changed.by == SBC_ASID and stored.changed.request_id == "cpis-upload-1"
    [record] = server.audit_for("cpis-upload-1")
    event = record.event
    assert (event.api, event.interaction, event.status, event.outcome) == ("cpis-r4", "upload", 200, "CPF02")
    assert (event.system_asid, event.system_ods, event.user_id, event.nhs_number) == (SBC_ASID, SBC, None, child)


def test_uploading_the_same_record_again_changes_nothing(server: Server) -> None:
    child = server.add_patient()
    give_plan(server, child)
    before = plans(server, child)
    again = upload(server, batch(careplan(child)))
    assert outcomes(again) == [("200 OK", "CPR06")]
    assert again.json()["entry"][0]["response"]["outcome"]["issue"][0]["diagnostics"] == "Plan unchanged"
    assert plans(server, child) == before


def test_a_new_record_for_the_same_key_updates_the_plan(server: Server) -> None:
    child = server.add_patient()
    give_plan(server, child)
    response = upload(server, batch(careplan(child, start=days(-10), end=days(60), name="Sandbox City Council CSC",
                                             office="01134960099", mobile=None)))
    assert outcomes(response) == [("200 OK", "CPR06")]
    entry = response.json()["entry"][0]["response"]
    assert entry["etag"] == 'W/"2"' and entry["outcome"]["issue"][0]["diagnostics"] == "Plan updated"
    [team] = shared(server, child)
    assert team["name"] == "Sandbox City Council CSC"
    assert team["period"] == {"start": days(-10), "end": days(60)}
    assert team["telecom"] == [{"system": "phone", "value": "01134960099", "use": "work"}]
    assert len(plans(server, child)) == 1


def test_each_plan_type_and_the_unborn_child_plan_under_the_mothers_number(server: Server) -> None:
    child, mother = server.add_patient(age=5), server.add_patient(age=26)
    response = upload(server, batch(careplan(child, "CPP"), careplan(child, "LAC"),
                                    careplan(mother, "UCP", end=days(120))))
    assert outcomes(response) == [("201 Created", "CPR06")] * 3
    assert sorted(t["category"][0]["coding"][0]["code"] for t in shared(server, child)) == sorted(
        [PLAN_CODES["CPP"], PLAN_CODES["LAC"]])
    [unborn] = shared(server, mother)
    assert unborn["category"][0]["coding"][0] == {"system": SNOMED, "code": PLAN_CODES["UCP"],
                                                  "display": PLAN_DISPLAYS["UCP"]}
    assert unborn["subject"]["identifier"]["value"] == mother and unborn["period"]["end"] == days(120)


def test_two_authorities_hold_their_own_plans_for_one_child(server: Server) -> None:
    child = server.add_patient()
    give_plan(server, child, asid=SBC_ASID)
    give_plan(server, child, asid=TCC_ASID)
    teams = shared(server, child)
    assert sorted(t["name"] for t in teams) == [SBC_NAME, TCC_NAME]
    assert sorted(t["managingOrganization"][0]["identifier"]["value"] for t in teams) == [SBC, TCC]


def test_ending_a_plan(server: Server) -> None:
    child, other = server.add_patient(), server.add_patient()
    give_plan(server, child)
    give_plan(server, other)
    response = upload(server, batch(careplan(child, status="completed", end=days(-1)),
                                    careplan(other, status="completed", end=days(0))))
    assert outcomes(response) == [("200 OK", "CPR06"), ("200 OK", "CPR06")]
    assert shared(server, child) == []  # ended yesterday: no longer shared
    [still] = shared(server, other)  # ends today: shared until the day is over
    assert still["status"] == "active" and still["period"]["end"] == days(0)
    [ended] = plans(server, child)
    assert ended.end is not None and ended.end.isoformat() == days(-1) and ended.version == 2


def test_withdrawing_a_plan_keeps_it_stored_and_is_idempotent(server: Server) -> None:
    child = server.add_patient()
    give_plan(server, child)
    withdraw = batch(careplan(child, status="entered-in-error", team=False))
    first = upload(server, withdraw)
    assert outcomes(first) == [("200 OK", "CPR06")]
    assert first.json()["entry"][0]["response"]["outcome"]["issue"][0]["diagnostics"] == "Plan withdrawn"
    assert shared(server, child) == []
    [stored] = plans(server, child)
    assert stored.withdrawn and stored.version == 2
    again = upload(server, withdraw)
    assert outcomes(again) == [("200 OK", "CPR06")]
    assert plans(server, child) == [stored]
    # sending the plan again shares it again
    assert outcomes(upload(server, batch(careplan(child)))) == [("200 OK", "CPR06")]
    assert len(shared(server, child)) == 1


def test_withdrawing_a_plan_never_uploaded_is_refused(server: Server) -> None:
    child = server.add_patient()
    response = upload(server, batch(careplan(child, status="entered-in-error", team=False)))
    assert outcomes(response) == [("404 Not Found", "CPR07")]
    issue = response.json()["entry"][0]["response"]["outcome"]["issue"][0]
    assert (issue["code"], issue["diagnostics"]) == ("not-found", "No such plan is held for this authority to withdraw")
    assert file_code(response) == "CPF04"


def test_every_demographic_check_gives_its_record_code_and_the_rest_applies(server: Server) -> None:
    good = server.add_patient()
    restricted = server.add_patient(security=SecurityLabel.RESTRICTED)
    unverified = server.add_patient(verified=False)
    superseded = server.add_patient(superseded_by=server.add_patient())
    response = upload(server, batch(
        careplan(NOT_IN_DEMOGRAPHICS), careplan(restricted), careplan(unverified),
        careplan(invalid_check_digit(good)), careplan(superseded), careplan(good)))
    assert outcomes(response) == [
        ("422 Unprocessable Entity", "CPR01"), ("422 Unprocessable Entity", "CPR02"),
        ("422 Unprocessable Entity", "CPR03"), ("400 Bad Request", "CPR04"), ("422 Unprocessable Entity", "CPR05"),
        ("201 Created", "CPR06")]
    displays = [e["response"]["outcome"]["issue"][0]["details"]["coding"][0]["display"]
                for e in response.json()["entry"]]
    assert displays == ["PDS Error - No Match Found for NHS Number",
                        "PDS Error - NHS Number Matched, but Sensitive Record", "PDS Error - NHS Number not Verified",
                        "PDS Error - NHS Number Format Incorrect", "PDS Error - NHS Number Verified, but Superseded",
                        "Successful Record Upload"]
    assert file_code(response) == "CPF03"
    assert response.json()["meta"]["tag"][0]["display"] == "Partial File Upload"
    for refused in (restricted, unverified, superseded):
        assert plans(server, refused) == []
    assert len(plans(server, good)) == 1


def test_an_upload_where_every_record_fails_is_unsuccessful(server: Server) -> None:
    response = upload(server, batch(careplan(NOT_IN_DEMOGRAPHICS), careplan("123")))
    assert outcomes(response) == [("422 Unprocessable Entity", "CPR01"), ("400 Bad Request", "CPR04")]
    assert file_code(response) == "CPF04"


@pytest.mark.parametrize(("change", "diagnostics"), [
    ({"start": days(2)}, "The plan start date must not be in the future"),
    ({"start": days(-5), "end": days(-10)}, "The plan end date must not be before its start date"),
    ({"kind": "UCP"}, "An unborn child plan needs an end date"),
    ({"status": "completed"}, "An ended plan needs an end date"),
    ({"status": "completed", "end": days(3)}, "An ended plan's end date must not be after today"),
    ({"end": days(-1)}, "A plan in place must not have an end date before today"),
    ({"team": False}, "The plan needs the authority's name and at least one phone number"),
    ({"office": None, "mobile": None}, "The plan needs the authority's name and at least one phone number"),
])
def test_plan_rules_refuse_the_record_with_cpr07(server: Server, change: dict[str, Any], diagnostics: str) -> None:
    child = server.add_patient()
    response = upload(server, batch(careplan(child, **change)))
    assert outcomes(response) == [("422 Unprocessable Entity", "CPR07")]
    issue = response.json()["entry"][0]["response"]["outcome"]["issue"][0]
    assert (issue["severity"], issue["code"], issue["diagnostics"]) == ("error", "business-rule", diagnostics)
    assert issue["details"]["coding"] == [{"system": CPR_SYSTEM, "code": "CPR07",
                                           "display": "Unsucessful Record Upload"}]
    assert plans(server, child) == []


def _entry(resource: Any, method: str = "POST", url: str = "CarePlan") -> dict[str, Any]:
    return {"resource": resource, "request": {"method": method, "url": url}}


def test_a_malformed_entry_fails_alone(server: Server) -> None:
    children = [server.add_patient() for _ in range(2)]
    bad_category = careplan(children[0])
    bad_category["category"] = [{"coding": [{"system": SNOMED, "code": "999999999"}]}]
    two_categories = careplan(children[0])
    two_categories["category"].append({"coding": [{"system": SNOMED, "code": PLAN_CODES["LAC"]}]})
    partial_date = careplan(children[0], start="2026-01")
    no_subject = careplan(children[0])
    no_subject["subject"] = {"reference": "Patient/1"}
    unknown_element = careplan(children[0])
    unknown_element["colour"] = "blue"
    draft = careplan(children[0], status="draft")
    bad_phone = careplan(children[0], office="call the office")
    work_twice = careplan(children[0])
    work_twice["contained"][0]["telecom"].append({"system": "phone", "value": "01134960005", "use": "work"})
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        _entry(careplan(children[0]), method="PUT"),
        _entry(careplan(children[0]), url="CarePlan/123"),
        _entry({"resourceType": "Patient"}),
        "not an entry",
        _entry(unknown_element),
        _entry(bad_category),
        _entry(two_categories),
        _entry(partial_date),
        _entry(no_subject),
        _entry(draft),
        _entry(bad_phone),
        _entry(work_twice),
        _entry(careplan(children[1])),
    ]}
    response = upload(server, bundle)
    diagnostics = [(e["response"]["status"], e["response"]["outcome"]["issue"][0]["details"]["coding"][0]["code"],
                    e["response"]["outcome"]["issue"][0]["diagnostics"]) for e in response.json()["entry"]]
    cpr07 = ("400 Bad Request", "CPR07")
    assert diagnostics == [
        (*cpr07, "entry.request must be method POST with url CarePlan"),
        (*cpr07, "entry.request must be method POST with url CarePlan"),
        (*cpr07, "entry.resource must be a CarePlan"),
        (*cpr07, "The entry is not a Bundle entry"),
        (*cpr07, "The entry does not conform to FHIR R4"),
        (*cpr07, "CarePlan.category must hold exactly one plan type from England-ChildProtectionPlan "
                 "(SNOMED 342191000000101, 764841000000100 or 818901000000100)"),
        (*cpr07, "CarePlan.category must hold exactly one plan type from England-ChildProtectionPlan "
                 "(SNOMED 342191000000101, 764841000000100 or 818901000000100)"),
        (*cpr07, "CarePlan.period.start and period.end must be full dates"),
        (*cpr07, "CarePlan.subject.identifier must be an NHS number (https://fhir.nhs.uk/Id/nhs-number)"),
        (*cpr07, "CarePlan.status must be active, completed or entered-in-error"),
        (*cpr07, "CareTeam.telecom must be phone numbers (digits, optional leading +), at most one with use work "
                 "(office hours) and one with use mobile (emergency duty)"),
        (*cpr07, "CareTeam.telecom must be phone numbers (digits, optional leading +), at most one with use work "
                 "(office hours) and one with use mobile (emergency duty)"),
        ("201 Created", "CPR06", "Plan created"),
    ]
    unknown = response.json()["entry"][4]["response"]["outcome"]["issue"][0]
    assert unknown["expression"] == ["Bundle.entry[4].resource.colour"]
    assert file_code(response) == "CPF03"
    assert plans(server, children[0]) == []
    assert len(plans(server, children[1])) == 1


def test_a_plan_naming_another_authority_is_refused_and_changes_nothing(server: Server) -> None:
    child = server.add_patient()
    give_plan(server, child, asid=TCC_ASID)
    before = plans(server, child)
    response = upload(server, batch(careplan(child, name=TCC_NAME, office="01134960066", authority_ods=TCC)),
                      asid=SBC_ASID)
    assert outcomes(response) == [("403 Forbidden", "CPR07")]
    issue = response.json()["entry"][0]["response"]["outcome"]["issue"][0]
    assert (issue["code"], issue["diagnostics"]) == (
        "forbidden", "The plan names another local authority: an authority uploads only its own plans")
    by_author = careplan(child)
    by_author["author"] = {"identifier": {"system": ODS, "value": TCC}}
    assert outcomes(upload(server, batch(by_author), asid=SBC_ASID)) == [("403 Forbidden", "CPR07")]
    # withdrawing "their" plan from the wrong authority finds nothing of its own to withdraw
    withdraw = upload(server, batch(careplan(child, status="entered-in-error", team=False)), asid=SBC_ASID)
    assert outcomes(withdraw) == [("404 Not Found", "CPR07")]
    assert plans(server, child) == before
    [team] = shared(server, child)
    assert team["name"] == TCC_NAME and team["telecom"][0]["value"] == "01134960001"
    # naming itself is fine
    own = upload(server, batch(careplan(child, authority_ods=SBC)), asid=SBC_ASID)
    assert outcomes(own) == [("201 Created", "CPR06")]


def test_systems_that_are_not_local_authorities_are_refused_and_change_nothing(server: Server) -> None:
    child = server.add_patient()
    bundle = batch(careplan(child))
    for rid, response in (
        ("cpis-up-gp", upload(server, bundle, asid=GP_SYSTEM_ASID, **{"X-Request-ID": "cpis-up-gp"})),
        ("cpis-up-none", upload(server, bundle, asid=None, **{"X-Request-ID": "cpis-up-none"})),
        ("cpis-up-bearer", upload(server, bundle, asid=None, **{"X-Request-ID": "cpis-up-bearer",
                                                                **clinician(server, ("B0107", "B0170"))})),
    ):
        assert_outcome(response, 403, "ACCESS_DENIED", ACCESS_DENIED_TEXT, issue_type="forbidden")
        [record] = server.audit_for(rid)
        assert (record.event.interaction, record.event.status, record.event.outcome) == ("upload", 403,
                                                                                        "ACCESS_DENIED")
    assert server.audit_for("cpis-up-gp")[0].event.system_asid == GP_SYSTEM_ASID
    assert plans(server, child) == []


def test_file_level_errors_are_cpf01(server: Server) -> None:
    child = server.add_patient()
    cases: list[tuple[Any, str, int, str, str, str]] = [
        (b"{not json", "application/fhir+json", 400, "structure", "MESSAGE_NOT_WELL_FORMED",
         "The request body is not well-formed JSON"),
        ({**batch(careplan(child)), "type": "transaction"}, "application/fhir+json", 400, "invalid",
         "INVALID_RESOURCE", "The request body must be a Bundle of type batch"),
        (careplan(child), "application/fhir+json", 400, "invalid", "INVALID_RESOURCE",
         "The request body must be a Bundle of type batch"),
        ({"resourceType": "Bundle", "type": "batch", "entry": []}, "application/fhir+json", 400, "invalid",
         "INVALID_RESOURCE", "The batch Bundle has no entries"),
        ({**batch(careplan(child)), "total": "many"}, "application/fhir+json", 400, "invalid", "INVALID_RESOURCE",
         "The Bundle does not conform to FHIR R4"),
        (json.dumps(batch(careplan(child))), "text/plain", 415, "not-supported", "UNSUPPORTED_MEDIA_TYPE",
         "Content-Type must be application/fhir+json or application/fhir+xml"),
        (b"<Bundle xmlns='http://hl7.org/fhir'><type value='batch'/></Bundle>", "application/fhir+xml", 400,
         "invalid", "INVALID_RESOURCE", "The batch Bundle has no entries"),
    ]
    for body, content_type, status, issue_type, code, diagnostics in cases:
        response = upload(server, body, content_type=content_type)
        outcome = assert_outcome(response, status, code, diagnostics, issue_type=issue_type)
        assert outcome["issue"][0]["details"]["coding"][1] == {"system": CPF_SYSTEM, "code": "CPF01",
                                                               "display": "File Level Error"}
    assert plans(server, child) == []


def test_upload_in_xml(server: Server) -> None:
    child = server.add_patient()
    entry = (
        '<entry><resource><CarePlan><contained><CareTeam><id value="la"/><name value="Sandbox City Council"/>'
        '<telecom><system value="phone"/><value value="01134960001"/><use value="work"/></telecom></CareTeam>'
        '</contained><status value="active"/><intent value="plan"/><category><coding>'
        f'<system value="{SNOMED}"/><code value="{PLAN_CODES["LAC"]}"/></coding></category>'
        f'<subject><identifier><system value="{NHS_SYSTEM}"/><value value="{child}"/></identifier></subject>'
        f'<period><start value="{days(-3)}"/></period><careTeam><reference value="#la"/></careTeam></CarePlan>'
        '</resource><request><method value="POST"/><url value="CarePlan"/></request></entry>'
    )
    broken = '<entry><resource><CarePlan><colour value="blue"/></CarePlan></resource>' \
             '<request><method value="POST"/><url value="CarePlan"/></request></entry>'
    xml = f'<Bundle xmlns="http://hl7.org/fhir"><type value="batch"/>{entry}{broken}</Bundle>'
    response = upload(server, xml, content_type="application/fhir+xml", Accept="application/fhir+xml")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+xml; charset=utf-8"
    assert b'<code value="CPF03"/>' in response.content and b'<status value="201 Created"/>' in response.content
    [team] = shared(server, child)
    assert team["category"][0]["coding"][0]["code"] == PLAN_CODES["LAC"]
    assert team["telecom"] == [{"system": "phone", "value": "01134960001", "use": "work"}]
    assert str(TODAY) > team["period"]["start"]
