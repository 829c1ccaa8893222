"""POST /Flag and PUT /Flag/{id}: every row of the IG's add and remove tables, and the full cycle."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from safeguarding.domain.fgm import IndicatorStatus, RemovalReason
from safeguarding.domain.patients import Gender, SecurityLabel

from ..support import NHS_SYSTEM, Server, assert_outcome, fhir, flag_body, invalid_check_digit, removal_body, years_ago

JSON = "application/fhir+json"
ACCESS_DENIED_TEXT = "The sender or receiver's ASID is not authorised for this interaction"


def post(client: httpx.Client, server: Server, body: Any, *, content_type: str = JSON,
         activities: tuple[str, ...] = ("B0370", "B0380"), **headers: str) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(f"{server.fgm}/Flag", content=content,
                       headers={**server.headers(activities, **headers), "Content-Type": content_type})


def put(client: httpx.Client, server: Server, flag_id: str, body: Any, *, content_type: str = JSON,
        activities: tuple[str, ...] = ("B0370", "B0380")) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.put(f"{server.fgm}/Flag/{flag_id}", content=content,
                      headers={**server.headers(activities), "Content-Type": content_type})


def search_total(client: httpx.Client, server: Server, nhs: str) -> int:
    response = client.get(f"{server.fgm}/Flag", params={"patient:identifier": f"{NHS_SYSTEM}|{nhs}"},
                          headers=server.headers())
    assert response.status_code == 200
    return int(response.json()["total"])


def test_create_returns_201_with_location_and_the_flag(server: Server, client: httpx.Client) -> None:
    child = server.add_patient()
    start = (date.today() - timedelta(days=10)).isoformat()
    response = post(client, server, flag_body(child, start=start), **{"X-Request-ID": "create-1"})
    assert response.status_code == 201, response.text
    flag = response.json()
    assert response.headers["location"] == f"{server.fgm}/Flag/{flag['id']}/_history/1"
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["x-request-id"] == "create-1"
    model = fhir(response)
    assert model.status == "active"
    assert model.subject.identifier.value == child
    assert str(model.period.start) == start
    assert model.code.coding[0].code == "902961000000107"
    assert client.get(response.headers["location"], headers=server.headers()).json() == flag
    [stored] = server.history(child)
    assert stored.id == flag["id"] and stored.created_by.user_id == "555021935107"
    assert stored.created_by.role_profile_id == "555021936108" and stored.created_by.org_code == "RR8"


def test_create_in_xml(server: Server, client: httpx.Client) -> None:
    child = server.add_patient()
    xml = (f'<Flag xmlns="http://hl7.org/fhir"><status value="active"/><code><coding>'
           f'<system value="http://snomed.info/sct"/><code value="902961000000107"/></coding></code>'
           f'<subject><identifier><system value="{NHS_SYSTEM}"/><value value="{child}"/></identifier></subject>'
           f'<period><start value="2026-01-05"/></period></Flag>')
    response = client.post(f"{server.fgm}/Flag", content=xml,
                           headers={**server.headers(Accept="application/fhir+xml"),
                                    "Content-Type": "application/fhir+xml"})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/fhir+xml; charset=utf-8"
    assert b'<status value="active"/>' in response.content
    assert [i.assessment_date for i in server.history(child)] == [date(2026, 1, 5)]


@pytest.mark.parametrize("gender", [Gender.FEMALE, Gender.UNKNOWN, Gender.OTHER])
def test_allowed_genders(server: Server, client: httpx.Client, gender: Gender) -> None:
    child = server.add_patient(gender=gender)
    assert post(client, server, flag_body(child)).status_code == 201


def test_restricted_record_can_have_an_indicator(server: Server, client: httpx.Client) -> None:
    child = server.add_patient(security=SecurityLabel.RESTRICTED)
    assert post(client, server, flag_body(child)).status_code == 201


# Each row of the Add table (DIGEST §2.5): body -> status, code, diagnostics. Every one changes nothing.
def _add_rows(server: Server) -> list[tuple[str, dict[str, Any], str, str]]:
    child = server.add_patient()
    with_reason = flag_body(child, extension=removal_body(flag_body(child))["extension"])
    return [
        ("invalid check digit", flag_body(invalid_check_digit(child)), "INVALID_VALUE", "Invalid NHS number"),
        ("wrong identifier system", {**flag_body(child), "subject": {"identifier": {
            "system": "https://example.org", "value": child}}}, "INVALID_VALUE", "Invalid NHS number"),
        ("unverified number", flag_body(server.add_patient(verified=False)), "INVALID_VALUE", "Invalid NHS number"),
        ("untraced number", flag_body("9990000115"), "INVALID_VALUE", "Invalid NHS number"),
        ("wrong code", flag_body(child, code="123456"), "UNSUPPORTED_VALUE", "Code must be 902961000000107"),
        ("status not active", flag_body(child, status="inactive"), "UNSUPPORTED_VALUE",
         "Status must be active on this interaction"),
        ("over 18", flag_body(server.add_patient(age=18)), "VALIDATION_ERROR", "Patient is over 18"),
        ("18 today", flag_body(server.add_patient(birth_date=years_ago(date.today(), 18))), "VALIDATION_ERROR",
         "Patient is over 18"),
        ("male", flag_body(server.add_patient(gender=Gender.MALE)), "VALIDATION_ERROR",
         "Patient gender must be female, unknown or indeterminate"),
        ("removal reason on create", with_reason, "VALIDATION_ERROR", "Removal reason not allowed on this interaction"),
        ("future assessment date", flag_body(child, start=(date.today() + timedelta(days=2)).isoformat()),
         "VALIDATION_ERROR", "period.start (the assessment date) must be a full date that is not in the future"),
        ("no assessment date", {k: v for k, v in flag_body(child).items() if k != "period"}, "VALIDATION_ERROR",
         "period.start (the assessment date) must be a full date that is not in the future"),
    ]


def test_every_add_error_row(server: Server, client: httpx.Client) -> None:
    for name, body, code, diagnostics in _add_rows(server):
        response = post(client, server, body)
        assert_outcome(response, 400, code, diagnostics), name
        nhs = body["subject"]["identifier"]["value"]
        assert server.history(nhs) == [], name


def test_already_set_row(server: Server, client: httpx.Client) -> None:
    child = server.add_patient()
    assert post(client, server, flag_body(child)).status_code == 201
    assert_outcome(post(client, server, flag_body(child)), 400, "VALIDATION_ERROR", "Flag value was already set")
    assert len(server.history(child)) == 1


def test_precondition_failed_row(server: Server, client: httpx.Client) -> None:
    child = server.add_patient()
    token = server.token(select_role=False)  # one role: selected implicitly; a header naming another is invalid
    response = client.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(child)),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": JSON,
                                    "NHSD-Session-URID": "999999999999"})
    assert_outcome(response, 400, "PRECONDITION_FAILED", "Missing or invalid head parameter")
    assert server.history(child) == []


def test_access_denied_row(server: Server, client: httpx.Client) -> None:
    child = server.add_patient()
    response = post(client, server, flag_body(child), activities=("B0370",))
    assert_outcome(response, 403, "ACCESS_DENIED", ACCESS_DENIED_TEXT, issue_type="forbidden")
    assert server.history(child) == []


def _created(server: Server, client: httpx.Client) -> tuple[str, dict[str, Any]]:
    child = server.add_patient()
    response = post(client, server, flag_body(child))
    assert response.status_code == 201
    return child, response.json()


def test_create_remove_cycle_keeps_history_and_allows_a_new_indicator(server: Server, client: httpx.Client) -> None:
    child, flag = _created(server, client)
    assert search_total(client, server, child) == 1
    response = put(client, server, flag["id"], removal_body(flag, code="2", status="inactive"))
    assert response.status_code == 200, response.text
    removed = fhir(response)
    assert removed.status == "inactive" and removed.meta.versionId == "2"
    [ext] = response.json()["extension"]
    assert ext == {"url": "https://fhir.nhs.uk/England/StructureDefinition/Extension-England-FlagRemovalReason",
                   "valueCoding": {"system": "https://fhir.nhs.uk/England/CodeSystem/England-FGMRemovalReason",
                                   "code": "2", "display": "No longer required - this child has had FGM"}}
    assert search_total(client, server, child) == 0
    [kept] = server.history(child)
    assert kept.status is IndicatorStatus.INACTIVE and kept.removal is not None
    assert kept.removal.reason is RemovalReason.HAS_HAD_FGM and kept.removal.by.user_id == "555021935107"
    again = post(client, server, flag_body(child))
    assert again.status_code == 201 and again.json()["id"] != flag["id"]
    assert search_total(client, server, child) == 1
    assert [i.status for i in server.history(child)] == [IndicatorStatus.INACTIVE, IndicatorStatus.ACTIVE]
    # the removed one is still readable, as removed
    assert client.get(f"{server.fgm}/Flag/{flag['id']}", headers=server.headers()).json()["status"] == "inactive"


def test_removal_accepts_the_ig_example_extension_form(server: Server, client: httpx.Client) -> None:
    _, flag = _created(server, client)
    response = put(client, server, flag["id"], removal_body(flag, code="0", legacy=True))
    assert response.status_code == 200
    assert response.json()["status"] == "entered-in-error"
    assert response.json()["extension"][0]["valueCoding"]["code"] == "0"


def test_removing_twice_changes_nothing_the_second_time(server: Server, client: httpx.Client) -> None:
    child, flag = _created(server, client)
    assert put(client, server, flag["id"], removal_body(flag)).status_code == 200
    before = server.history(child)
    response = put(client, server, flag["id"], removal_body(flag, code="2", status="inactive"))
    assert_outcome(response, 400, "VALIDATION_ERROR", "Flag has already been removed")
    assert server.history(child) == before


def test_every_remove_error_row(server: Server, client: httpx.Client) -> None:
    child, flag = _created(server, client)
    no_reason = {k: v for k, v in removal_body(flag).items() if k != "extension"}
    rows = [
        ("unknown id", "1b0e2c0a-0000-4000-8000-000000000000",
         {**removal_body(flag), "id": "1b0e2c0a-0000-4000-8000-000000000000"}, "RESOURCE_NOT_FOUND",
         "Resource not found"),
        ("id mismatch", flag["id"], {**removal_body(flag), "id": "another-id"}, "INVALID_VALUE",
         "ID specified in the URL does not match the ID specified in the resource"),
        ("no reason", flag["id"], no_reason, "VALIDATION_ERROR", "Removal reason must be supplied"),
        ("reason 1 is DSTU2 only", flag["id"], removal_body(flag, code="1"), "VALIDATION_ERROR",
         "Removal reason must be code 0 or 2 of England-FGMRemovalReason"),
        ("status active", flag["id"], removal_body(flag, status="active"), "UNSUPPORTED_VALUE",
         "Status must be inactive or entered-in-error on this interaction"),
    ]
    for name, flag_id, body, code, diagnostics in rows:
        assert_outcome(put(client, server, flag_id, body), 400, code, diagnostics), name
    assert_outcome(put(client, server, flag["id"], removal_body(flag), activities=("B0370",)), 403, "ACCESS_DENIED",
                   ACCESS_DENIED_TEXT, issue_type="forbidden")
    [unchanged] = server.history(child)
    assert unchanged.status is IndicatorStatus.ACTIVE and unchanged.version == 1


def test_concurrent_creates_for_one_child_give_exactly_one_indicator(server: Server) -> None:
    child = server.add_patient()
    body = json.dumps(flag_body(child))
    token = server.token()

    def create(_: int) -> int:
        with server.client() as http:
            return http.post(f"{server.fgm}/Flag", content=body,
                             headers={"Authorization": f"Bearer {token}", "Content-Type": JSON}).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(create, range(20)))
    assert sorted(statuses) == [201] + [400] * 19
    assert len(server.history(child)) == 1
