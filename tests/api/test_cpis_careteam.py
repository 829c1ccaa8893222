"""GET /cpis/FHIR/R4/CareTeam over real HTTPS: the sandbox's plans, the IG's error table row for row,
headers, formats, and /metadata. Sandbox children are read silently (scheduled) so that nothing changes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from lxml import etree

from ..support import NHS_SYSTEM, Server, assert_outcome, fhir
from .cpis_helpers import (
    ACCESS_DENIED_TEXT,
    GP,
    PLAN_CODES,
    PLAN_DISPLAYS,
    SBC,
    SBC_NAME,
    SNOMED,
    TCC,
    TCC_NAME,
    care_teams,
    clinician,
    matches,
)

CPP_CHILD, LAC_CHILD, MOTHER = "9990000123", "9990000131", "9990000158"
ENDED, WITHDRAWN, TWO_PLANS = "9990000166", "9990000174", "9990000182"
NO_PLAN = "9990000026"
SPEC = Path("/work/shared/spec/nhs/cpis-r4/CapStatement-CPIS-FHIR-API-Producer.json")


def silent(server: Server, **extra: str) -> dict[str, str]:
    return clinician(server, unscheduled="false", **extra)


def test_the_sandbox_child_on_a_child_protection_plan(server: Server) -> None:
    response = care_teams(server, CPP_CHILD, silent(server, TraceID="6ede3b9d-a81b-4c75-9d77-e1d64d85c323"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
    assert response.headers["traceid"] == "6ede3b9d-a81b-4c75-9d77-e1d64d85c323"
    assert "date" in response.headers and response.headers["cache-control"] == "no-store"
    bundle = fhir(response)
    assert bundle.type == "searchset" and bundle.total == 1
    assert bundle.link[0].url == f"{server.cpis}/CareTeam?patient:identifier={NHS_SYSTEM}|{CPP_CHILD}"
    [entry] = bundle.entry
    team = entry.resource
    assert entry.search.mode == "match" and entry.fullUrl == f"{server.cpis}/CareTeam/{team.id}"
    assert team.get_resource_type() == "CareTeam" and team.status == "active"
    assert [(c.system, c.code, c.display) for c in team.category[0].coding] == [
        (SNOMED, PLAN_CODES["CPP"], PLAN_DISPLAYS["CPP"])]
    assert team.name == SBC_NAME
    assert [(t.system, t.value, t.use) for t in team.telecom] == [("phone", "01134960001", "work"),
                                                                  ("phone", "07700900001", "mobile")]
    assert (team.subject.identifier.system, team.subject.identifier.value) == (NHS_SYSTEM, CPP_CHILD)
    assert team.period.start is not None and team.period.end is None
    assert team.managingOrganization[0].identifier.value == SBC


def test_each_sandbox_plan_type_and_the_mothers_number(server: Server) -> None:
    [looked_after] = matches(care_teams(server, LAC_CHILD, silent(server)))
    assert looked_after["category"][0]["coding"][0]["code"] == PLAN_CODES["LAC"] and looked_after["name"] == TCC_NAME
    [unborn] = matches(care_teams(server, MOTHER, silent(server)))
    assert unborn["category"][0]["coding"][0]["code"] == PLAN_CODES["UCP"]
    assert unborn["subject"]["identifier"]["value"] == MOTHER and "end" in unborn["period"]
    two = matches(care_teams(server, TWO_PLANS, silent(server)))
    assert sorted((t["managingOrganization"][0]["identifier"]["value"], t["category"][0]["coding"][0]["code"])
                  for t in two) == [(SBC, PLAN_CODES["CPP"]), (TCC, PLAN_CODES["LAC"])]
    assert fhir(care_teams(server, TWO_PLANS, silent(server))).total == 2


@pytest.mark.parametrize("number", [ENDED, WITHDRAWN, NO_PLAN, "9990000115"])
def test_no_shared_plan_is_an_empty_searchset(server: Server, number: str) -> None:
    response = care_teams(server, number, silent(server))
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "searchset" and body["total"] == 0 and "entry" not in body
    assert fhir(response).total == 0


def test_search_forms_of_the_patient_parameter(server: Server) -> None:
    with server.client() as client:
        for params in ({"patient": CPP_CHILD}, {"patient": f"{NHS_SYSTEM}|{CPP_CHILD}"},
                       {"patient:identifier": CPP_CHILD},
                       {"patient:identifier": f"http://fhir.nhs.uk/id/nhs-number|{CPP_CHILD}"},
                       {"patient:identifier": f"HTTPS://FHIR.NHS.UK/ID/NHS-NUMBER|{CPP_CHILD}"},
                       {"patient:identifier": f"{NHS_SYSTEM}|{CPP_CHILD}",
                        "_include": "AuditEvent:entity-type=http://terminology.hl7.org/CodeSystem/v3-RoleClass|ASSIGNED"}):
            response = client.get(f"{server.cpis}/CareTeam", params=params, headers=silent(server))
            assert response.status_code == 200 and response.json()["total"] == 1, params


def test_xml_by_accept_and_format(server: Server) -> None:
    for extra, accept in (({}, "application/fhir+xml"), ({"_format": "xml"}, "*/*")):
        response = care_teams(server, CPP_CHILD, silent(server, Accept=accept), **extra)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/fhir+xml; charset=utf-8"
        root = etree.fromstring(response.content)
        ns = {"f": "http://hl7.org/fhir"}
        assert root.find("f:total", ns).get("value") == "1"
        assert root.find("f:entry/f:resource/f:CareTeam/f:name", ns).get("value") == SBC_NAME


# The IG's error table (DIGEST §3.1), row for row ----------------------------------------------------------


@pytest.mark.parametrize("bad", ["9990000124", "999000012", "99900001233", "abcdefghij", "999 000 0123", ""])
def test_invalid_nhs_number_row(server: Server, bad: str) -> None:
    assert_outcome(care_teams(server, bad, silent(server)), 400, "INVALID_SEARCH_DATA", "Invalid NHS number")


def test_wrong_identifier_system_is_an_invalid_nhs_number(server: Server) -> None:
    with server.client() as client:
        response = client.get(f"{server.cpis}/CareTeam", params={"patient:identifier": f"https://x.org/id|{CPP_CHILD}"},
                              headers=silent(server))
    assert_outcome(response, 400, "INVALID_SEARCH_DATA", "Invalid NHS number")


def test_missing_or_repeated_search_parameter(server: Server) -> None:
    expected = ("Search by patient:identifier=https://fhir.nhs.uk/Id/nhs-number|<NHS number> or "
                "patient=<NHS number>, given once")
    with server.client() as client:
        assert_outcome(client.get(f"{server.cpis}/CareTeam", headers=silent(server)), 400, "INVALID_SEARCH_DATA",
                       expected)
        both = client.get(f"{server.cpis}/CareTeam?patient={CPP_CHILD}&patient:identifier={LAC_CHILD}",
                          headers=silent(server))
        assert_outcome(both, 400, "INVALID_SEARCH_DATA", expected)


@pytest.mark.parametrize("value", ["yes", "1", "", "true, false", "unscheduled"])
def test_invalid_unscheduled_header_is_precondition_failed(server: Server, value: str) -> None:
    response = care_teams(server, CPP_CHILD, clinician(server, unscheduled=value))
    assert_outcome(response, 400, "PRECONDITION_FAILED", "Missing or invalid head parameter")


def test_repeated_unscheduled_header_is_precondition_failed(server: Server) -> None:
    headers = [("Authorization", clinician(server)["Authorization"]), ("IsUnscheduledAccessEvent", "false"),
               ("IsUnscheduledAccessEvent", "false")]
    with server.client() as client:
        response = client.get(f"{server.cpis}/CareTeam", params={"patient": CPP_CHILD}, headers=headers)
    assert_outcome(response, 400, "PRECONDITION_FAILED", "Missing or invalid head parameter")


@pytest.mark.parametrize("value", ["FALSE", "False", "fAlSe"])
def test_unscheduled_header_is_case_insensitive(server: Server, value: str) -> None:
    assert care_teams(server, CPP_CHILD, clinician(server, unscheduled=value)).status_code == 200


def test_access_denied_row(server: Server) -> None:
    for activities in (("B0370", "B0380"), ()):
        response = care_teams(server, CPP_CHILD, clinician(server, activities, unscheduled="false"))
        assert_outcome(response, 403, "ACCESS_DENIED", ACCESS_DENIED_TEXT, issue_type="forbidden")
    assert care_teams(server, CPP_CHILD, clinician(server, ("B0170",), GP)).status_code == 200


def test_missing_or_bad_token_is_401(server: Server) -> None:
    for headers, reason in (({}, "no bearer token"), ({"Authorization": "Bearer not-a-jwt"},
                                                       "token is not a well-formed JWT")):
        response = care_teams(server, CPP_CHILD, headers)
        assert_outcome(response, 401, "ACCESS_DENIED", f"Missing or invalid access token (sandbox only: {reason})",
                       issue_type="login")
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_role_not_selectable_is_precondition_failed(server: Server) -> None:
    token = server.token(("B0107",), select_role=False)
    response = care_teams(server, CPP_CHILD, {"Authorization": f"Bearer {token}", "NHSD-Session-URID": "999999999999"})
    assert_outcome(response, 400, "PRECONDITION_FAILED", "Missing or invalid head parameter")


def test_search_is_audited_with_the_caller_and_the_child(server: Server) -> None:
    response = care_teams(server, CPP_CHILD, silent(server, **{"X-Request-ID": "cpis-ct-audit",
                                                               "X-Correlation-ID": "corr-ct"}))
    assert response.status_code == 200
    [record] = server.audit_for("cpis-ct-audit")
    event = record.event
    assert (event.api, event.interaction, event.status, event.outcome) == ("cpis-r4", "careteam-search", 200, "OK")
    assert (event.user_id, event.role_profile_id, event.org_code, event.nhs_number) == (
        "555021941103", "555021942104", "RR8", CPP_CHILD)
    assert event.correlation_id == "corr-ct" and event.resource_id is None  # a silent read records no access


# /metadata ------------------------------------------------------------------------------------------------


def test_metadata_follows_the_cpis_producer_capability_statement(server: Server) -> None:
    with server.client() as client:
        response = client.get(f"{server.cpis}/metadata")
    assert response.status_code == 200
    statement = fhir(response)
    producer = json.loads(SPEC.read_text())
    assert statement.fhirVersion == producer["fhirVersion"] and statement.kind == "instance"
    assert statement.instantiates == [producer["url"]]
    assert statement.implementation.url == server.cpis
    [rest] = statement.rest
    assert rest.mode == "server"
    assert {c.code for s in rest.security.service for c in s.coding} == {"OAuth", "Certificates"}
    resources = {r.type: r for r in rest.resource}
    for declared in producer["rest"][0]["resource"]:
        served = resources[declared["type"]]
        assert served.profile == declared["profile"]
        # clinical-patient is a reference parameter (the producer's "token" is corrected)
        assert [(p.name, p.definition, p.type) for p in served.searchParam] == [
            (p["name"], p["definition"], "reference") for p in declared["searchParam"]]
        assert (served.searchInclude or []) == declared.get("searchInclude", [])
    # CareTeam: read by id and search; AuditEvent: the IG's "read" is the access-history search
    assert [i.code for i in resources["CareTeam"].interaction] == ["read", "search-type"]
    assert [i.code for i in resources["AuditEvent"].interaction] == ["search-type"]
    assert sorted(resources) == ["AuditEvent", "CarePlan", "CareTeam", "Communication"]
    assert [i.code for i in rest.interaction] == ["batch"]
    with server.client() as client:
        assert client.get(f"{server.cpis}/metadata", params={"_format": "xml"}).content.startswith(b"<?xml")


def test_unknown_cpis_paths_and_methods(server: Server) -> None:
    with server.client() as client:
        assert_outcome(client.get(f"{server.cpis}/CareTeam/123", headers=silent(server)), 404, "RESOURCE_NOT_FOUND",
                       "Resource not found", issue_type="not-found")
        assert_outcome(client.delete(f"{server.cpis}/CareTeam", headers=silent(server)), 405, "METHOD_NOT_ALLOWED",
                       "Method not allowed for this resource", issue_type="not-supported")


def test_cpis_responses_carry_the_security_headers(server: Server) -> None:
    response = httpx.get(f"{server.cpis}/metadata", verify=server.tls())
    assert response.headers["strict-transport-security"].startswith("max-age=")
