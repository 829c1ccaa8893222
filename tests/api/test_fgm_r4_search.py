"""GET /Flag and GET /Flag/{id} over real HTTPS against the sandbox server."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
from lxml import etree

from safeguarding.domain.fgm import Actor, Indicator, IndicatorStatus
from safeguarding.domain.patients import Gender

from ..support import NHS_SYSTEM, Server, assert_outcome, fhir, years_ago

GIRL = "9990000018"
GIRL_WITHOUT = "9990000026"
TURNS_18_TOMORROW = "9990000085"
UNVERIFIED = "9990000093"
NOT_IN_DEMOGRAPHICS = "9990000115"


def search(client: httpx.Client, server: Server, nhs: str, **headers: str) -> httpx.Response:
    return client.get(f"{server.fgm}/Flag", params={"patient:identifier": f"{NHS_SYSTEM}|{nhs}"},
                      headers=server.headers(("B0370",), **headers))


def test_search_finds_the_sandbox_girls_indicator(server: Server, client: httpx.Client) -> None:
    response = search(client, server, GIRL, **{"X-Request-ID": "req-girl-1", "TraceID": "trace-1"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
    assert response.headers["x-request-id"] == "req-girl-1"
    assert response.headers["traceid"] == "trace-1"
    assert "date" in response.headers
    bundle = fhir(response)
    assert bundle.type == "searchset" and bundle.total == 1
    assert bundle.link[0].relation == "self"
    assert bundle.link[0].url == f"{server.fgm}/Flag?patient:identifier={NHS_SYSTEM}|{GIRL}"
    entry = bundle.entry[0]
    assert entry.search.mode == "match"
    flag = entry.resource
    assert entry.fullUrl == f"{server.fgm}/Flag/{flag.id}"
    assert flag.status == "active"
    assert [(c.system, c.code, c.display) for c in flag.code.coding] == [
        ("http://snomed.info/sct", "902961000000107", "Family history of FGM (female genital mutilation)")]
    assert flag.subject.identifier.system == NHS_SYSTEM and flag.subject.identifier.value == GIRL
    assert date.fromisoformat(str(flag.period.start)) < date.today()
    assert flag.extension is None
    assert flag.meta.versionId == "1"


def test_search_for_a_child_without_an_indicator_is_an_empty_searchset(server: Server, client: httpx.Client) -> None:
    response = search(client, server, GIRL_WITHOUT)
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "searchset" and body["total"] == 0 and "entry" not in body
    assert fhir(response).total == 0


def test_search_accepts_a_bare_nhs_number_token(server: Server, client: httpx.Client) -> None:
    response = client.get(f"{server.fgm}/Flag", params={"patient:identifier": GIRL}, headers=server.headers())
    assert response.status_code == 200 and response.json()["total"] == 1


def test_search_in_xml_by_accept_and_by_format(server: Server, client: httpx.Client) -> None:
    for extra_params, accept in (({}, "application/fhir+xml"), ({"_format": "xml"}, "*/*")):
        response = client.get(f"{server.fgm}/Flag", params={"patient:identifier": f"{NHS_SYSTEM}|{GIRL}",
                                                             **extra_params},
                              headers=server.headers(Accept=accept))
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/fhir+xml; charset=utf-8"
        root = etree.fromstring(response.content)
        ns = {"f": "http://hl7.org/fhir"}
        assert root.tag == "{http://hl7.org/fhir}Bundle"
        assert root.find("f:total", ns).get("value") == "1"
        assert root.find("f:entry/f:resource/f:Flag/f:status", ns).get("value") == "active"
        assert root.find("f:entry/f:resource/f:Flag/f:subject/f:identifier/f:value", ns).get("value") == GIRL


def test_unacceptable_accept_is_406(server: Server, client: httpx.Client) -> None:
    response = client.get(f"{server.fgm}/Flag", params={"patient:identifier": GIRL},
                          headers=server.headers(Accept="text/html"))
    assert_outcome(response, 406, "NOT_ACCEPTABLE",
                   "Accept must allow application/fhir+json or application/fhir+xml", issue_type="not-supported")


def test_invalid_nhs_number_row(server: Server, client: httpx.Client) -> None:
    for bad in ("9990000017", "999000001", "99900000188", "abcdefghij", "999 000 0018"):
        response = search(client, server, bad)
        assert_outcome(response, 400, "INVALID_SEARCH_DATA", "Invalid NHS number")


def test_wrong_identifier_system_is_an_invalid_nhs_number(server: Server, client: httpx.Client) -> None:
    response = client.get(f"{server.fgm}/Flag", params={"patient:identifier": f"https://example.org/id|{GIRL}"},
                          headers=server.headers())
    assert_outcome(response, 400, "INVALID_SEARCH_DATA", "Invalid NHS number")


def test_unverified_and_untraced_numbers_are_refused(server: Server, client: httpx.Client) -> None:
    for number in (UNVERIFIED, NOT_IN_DEMOGRAPHICS):
        assert_outcome(search(client, server, number), 400, "INVALID_SEARCH_DATA", "Invalid NHS number")


def test_missing_or_repeated_search_parameter(server: Server, client: httpx.Client) -> None:
    expected = "Search by patient:identifier=https://fhir.nhs.uk/Id/nhs-number|<NHS number>, given once"
    response = client.get(f"{server.fgm}/Flag", headers=server.headers())
    assert_outcome(response, 400, "INVALID_SEARCH_DATA", expected)
    response = client.get(f"{server.fgm}/Flag?patient:identifier={GIRL}&patient:identifier={GIRL_WITHOUT}",
                          headers=server.headers())
    assert_outcome(response, 400, "INVALID_SEARCH_DATA", expected)


def test_search_without_b0370_is_403(server: Server, client: httpx.Client) -> None:
    response = client.get(f"{server.fgm}/Flag", params={"patient:identifier": GIRL},
                          headers={"Authorization": f"Bearer {server.token(('B0380',))}"})
    assert_outcome(response, 403, "ACCESS_DENIED",
                   "The sender or receiver's ASID is not authorised for this interaction", issue_type="forbidden")


def test_invalid_trace_header_is_precondition_failed(server: Server, client: httpx.Client) -> None:
    response = search(client, server, GIRL, TraceID="has spaces and ;")
    assert_outcome(response, 400, "PRECONDITION_FAILED", "Missing or invalid head parameter")


def test_child_who_turns_18_tomorrow_is_still_shared(server: Server, client: httpx.Client) -> None:
    response = search(client, server, TURNS_18_TOMORROW)
    assert response.status_code == 200 and response.json()["total"] == 1


def _insert_active(server: Server, nhs_number: str) -> str:
    indicator_id = str(uuid.uuid4())
    store = server.store()
    try:
        with store.transaction() as tx:
            tx.insert_indicator(Indicator(indicator_id, nhs_number, date(2024, 1, 2), IndicatorStatus.ACTIVE,
                                          "2024-01-02T00:00:00.000000Z", Actor(user_id="seed")))
    finally:
        store.close()
    return indicator_id


def test_indicator_stops_being_returned_the_day_the_child_turns_18(server: Server, client: httpx.Client) -> None:
    eighteen_today = server.add_patient(birth_date=years_ago(date.today(), 18))
    indicator_id = _insert_active(server, eighteen_today)
    response = search(client, server, eighteen_today)
    assert response.status_code == 200 and response.json()["total"] == 0
    assert_outcome(client.get(f"{server.fgm}/Flag/{indicator_id}", headers=server.headers()), 404,
                   "RESOURCE_NOT_FOUND", "Resource not found", issue_type="not-found")
    # still stored, still active until `safeguarding expire` runs
    assert [i.status for i in server.history(eighteen_today)] == [IndicatorStatus.ACTIVE]


def test_read_by_id(server: Server, client: httpx.Client) -> None:
    found = search(client, server, GIRL).json()["entry"][0]["resource"]
    response = client.get(f"{server.fgm}/Flag/{found['id']}", headers=server.headers(("B0370",)))
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"1"'
    assert response.json() == found
    assert fhir(response).id == found["id"]


def test_read_unknown_id_is_404(server: Server, client: httpx.Client) -> None:
    response = client.get(f"{server.fgm}/Flag/{uuid.uuid4()}", headers=server.headers())
    assert_outcome(response, 404, "RESOURCE_NOT_FOUND", "Resource not found", issue_type="not-found")


def test_male_child_search_is_allowed_and_empty(server: Server, client: httpx.Client) -> None:
    boy = server.add_patient(gender=Gender.MALE)
    response = search(client, server, boy)
    assert response.status_code == 200 and response.json()["total"] == 0
