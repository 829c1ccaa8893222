"""FGM-IS DSTU2 messaging (POST /fhir/fgm/{query,create,delete}) over real mutual TLS.

The requests are the NHS guide's example messages from tests/fixtures/dstu2, changed only in the NHS
number, the ASIDs and the dates (docs/api-dstu2.md shows the same files).
"""

from __future__ import annotations

import json
import socket
import ssl
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from lxml import etree

from safeguarding.cli_systems import systems as systems_cli
from safeguarding.domain.fgm import IndicatorStatus, RemovalReason
from safeguarding.domain.patients import Gender
from safeguarding.security import certs

from ..support import NHS_SYSTEM, Server, flag_body, invalid_check_digit, removal_body, years_ago

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dstu2"
FHIR = "http://hl7.org/fhir"
NS = {"f": FHIR}
NHS = "http://fhir.nhs.net/"

GP_ASID = "047192794544"  # sandbox system registered for all three interactions
QUERY_ONLY_ASID = "200000000117"  # sandbox system registered for the query only
SERVICE_ASID = "990101234567"
GIRL = "9990000018"  # sandbox girl with an active indicator (never changed by these tests)
NOT_IN_DEMOGRAPHICS = "9990000115"

SYNC = "urn:nhs:names:services:clinicals-sync:"
QUERY, CREATE, DELETE = SYNC + "FGMQuery_2_0", SYNC + "FGMCreate_1_0", SYNC + "FGMDelete_1_0"
RESPONSE_EVENT = {"query": SYNC + "FGMQueryResponse_2_0", "create": SYNC + "FGMCreateResponse_1_0",
                  "delete": SYNC + "FGMDeleteResponse_1_0"}
FIXTURE = {"query": "query-v2-request.xml", "create": "create-request.xml", "delete": "delete-request.xml"}
REQUEST_EVENT = {"query": QUERY, "create": CREATE, "delete": DELETE}
XML_RESPONSE = "application/xml+fhir;charset=utf-8"
JSON_RESPONSE = "application/json+fhir;charset=utf-8"

# spine-response-code-2-0 rows (DIGEST §1.7): status, severity, issue code, display, response.code.
ROWS = {
    "NO_RECORD_FOUND": (404, "error", "not-found", "No record found", "ok"),
    "INVALID_NHS_NUMBER": (400, "error", "invalid", "Invalid NHS number", "fatal-error"),
    "PATIENT_OVER_18": (400, "error", "invalid", "Patient is over 18", "fatal-error"),
    "INVALID_PARAMETER": (400, "error", "invalid", "Invalid parameter", "fatal-error"),
    "FLAG_ALREADY_SET": (422, "warning", "informational", "Flag value was already set", "fatal-error"),
    "MESSAGE_NOT_WELL_FORMED": (400, "error", "structure", "Message not well formed", "fatal-error"),
    "ASID_CHECK_FAILED": (403, "error", "forbidden",
                          "The sender or receiver's ASID is not authorised for this interaction", "fatal-error"),
    "AUTHOR_CREDENTIALS_ERROR": (401, "fatal", "forbidden", "Author credentials error", "fatal-error"),
}


# ---------------------------------------------------------------------------------------------
# Messages: the NHS examples, adjusted
# ---------------------------------------------------------------------------------------------


def one(root: etree._Element, path: str) -> etree._Element:
    found = root.xpath(path, namespaces=NS)
    assert len(found) == 1, path
    return found[0]


def value(root: etree._Element, path: str) -> str:
    return str(one(root, path).get("value"))


def header_id(body: bytes) -> str:
    return value(etree.fromstring(body), "f:entry/f:resource/f:MessageHeader/f:id")


def message(kind: str, nhs_number: str, *, source: str = GP_ASID, destination: str = SERVICE_ASID,
            assessed: date | None = None, birth: date | None = None, reason: str = "1",
            change: Callable[[etree._Element], object] | None = None) -> bytes:
    """An NHS example request with this NHS number, these ASIDs and dates, and a fresh MessageHeader id."""
    root = etree.fromstring((FIXTURES / FIXTURE[kind]).read_bytes())
    resource = "f:entry/f:resource"
    one(root, f"{resource}/f:MessageHeader/f:id").set("value", str(uuid.uuid4()))
    one(root, f"{resource}/f:MessageHeader/f:timestamp").set("value", datetime.now().astimezone().isoformat())
    one(root, f"{resource}/f:MessageHeader/f:source/f:endpoint").set("value", f"urn:nhs:addressing:asid:{source}")
    one(root, f"{resource}/f:MessageHeader/f:destination/f:endpoint").set(
        "value", f"urn:nhs:addressing:asid:{destination}")
    if kind == "create":
        patient = f"{resource}/f:Flag/f:contained/f:Patient"
        one(root, f"{patient}/f:identifier/f:value").set("value", nhs_number)
        one(root, f"{patient}/f:birthDate").set("value", (birth or years_ago(date.today(), 10, 30)).isoformat())
        one(root, f"{resource}/f:Flag/f:period/f:start").set(
            "value", (assessed or date.today() - timedelta(days=7)).isoformat())
    else:
        one(root, f"{resource}/f:Parameters/f:parameter[f:name/@value='NHSNumber']/f:valueString").set(
            "value", nhs_number)
    if kind == "delete":
        one(root, f"{resource}/f:Parameters/f:parameter[f:name/@value='FGMDeleteReason']"
                  "/f:valueCodeableConcept/f:coding/f:code").set("value", reason)
    if change is not None:
        change(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def json_query(nhs_number: str) -> bytes:
    document = json.loads((FIXTURES / "query-v2-request.json").read_text())
    document["entry"][0]["resource"]["id"] = str(uuid.uuid4())
    document["entry"][1]["resource"]["parameter"][1]["valueString"] = nhs_number
    return json.dumps(document).encode()


# ---------------------------------------------------------------------------------------------
# Clients and sending
# ---------------------------------------------------------------------------------------------


def system_cert(server: Server, asid: str) -> tuple[str, str]:
    [system] = [s for s in server.facts["systems"] if s["asid"] == asid]
    return system["cert"], system["key"]


@pytest.fixture(scope="module")
def gp(server: Server) -> Iterator[httpx.Client]:
    with server.client(cert=system_cert(server, GP_ASID)) as http:
        yield http


@pytest.fixture(scope="module")
def query_only(server: Server) -> Iterator[httpx.Client]:
    with server.client(cert=system_cert(server, QUERY_ONLY_ASID)) as http:
        yield http


def send(http: httpx.Client, server: Server, kind: str, body: bytes, *, content_type: str = "text/xml; charset=utf-8",
         soap_action: str | None = None, request_id: str | None = None) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if soap_action is not None:
        headers["SOAPAction"] = soap_action
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    return http.post(f"{server.base}/fhir/fgm/{kind}", content=body, headers=headers)


# ---------------------------------------------------------------------------------------------
# Checking responses: every field the guide defines
# ---------------------------------------------------------------------------------------------


def check_response(response: httpx.Response, kind: str, *, status: int, answers: str | None,
                   destination: str | None = GP_ASID, outcome: str | None = None,
                   diagnostics: str | None = None) -> etree._Element:
    """Check the response Bundle and MessageHeader (and OperationOutcome); return the Bundle.

    ``answers`` is the request MessageHeader id; None when the request could not be read that far.
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == XML_RESPONSE
    bundle = etree.fromstring(response.content)
    assert bundle.tag == f"{{{FHIR}}}Bundle"
    bundle_id = value(bundle, "f:id")
    uuid.UUID(bundle_id)
    assert value(bundle, "f:meta/f:profile") == NHS + "StructureDefinition/spine-message-bundle-1-0"
    assert value(bundle, "f:type") == "message"
    assert bundle.xpath("f:total | f:link | f:entry/f:fullUrl | f:entry/f:search", namespaces=NS) == []
    resources = bundle.xpath("f:entry/f:resource/*", namespaces=NS)
    header = resources[0]
    assert etree.QName(header).localname == "MessageHeader"
    assert value(header, "f:id") == bundle_id
    assert value(header, "f:meta/f:profile") == NHS + "StructureDefinition/spine-response-messageheader-2-0"
    sent = datetime.fromisoformat(value(header, "f:timestamp"))
    assert abs((datetime.now(sent.tzinfo) - sent).total_seconds()) < 60
    assert value(header, "f:event/f:system") == NHS + "ValueSet/message-event-2-0"
    assert value(header, "f:event/f:code") == RESPONSE_EVENT[kind]
    identifier = value(header, "f:response/f:identifier")
    if answers is not None:
        assert identifier == answers
    else:
        uuid.UUID(identifier)  # a fresh id: the request's own could not be read
    assert value(header, "f:source/f:endpoint") == f"urn:nhs:addressing:asid:{SERVICE_ASID}"
    if destination is None:
        assert header.xpath("f:destination", namespaces=NS) == []
    else:
        assert value(header, "f:destination/f:endpoint") == f"urn:nhs:addressing:asid:{destination}"
    assert header.xpath("f:author", namespaces=NS) == []
    if outcome is None:
        assert value(header, "f:response/f:code") == "ok"
        assert header.xpath("f:response/f:details", namespaces=NS) == []
        return bundle
    row_status, severity, issue_code, display, response_code = ROWS[outcome]
    assert status == row_status
    assert [etree.QName(r).localname for r in resources] == ["MessageHeader", "OperationOutcome"]
    assert header.xpath("f:data", namespaces=NS) == []
    assert value(header, "f:response/f:code") == response_code
    operation_outcome = resources[1]
    outcome_id = value(operation_outcome, "f:id")
    assert value(header, "f:response/f:details/f:reference") == f"OperationOutcome/{outcome_id}"
    assert value(operation_outcome, "f:meta/f:profile") == NHS + "StructureDefinition/spine-operationoutcome-1-0"
    [issue] = operation_outcome.xpath("f:issue", namespaces=NS)
    assert value(issue, "f:severity") == severity
    assert value(issue, "f:code") == issue_code
    [coding] = issue.xpath("f:details/f:coding", namespaces=NS)
    assert value(coding, "f:system") == NHS + "ValueSet/spine-response-code-2-0"
    assert value(coding, "f:code") == outcome
    assert value(coding, "f:display") == display
    assert issue.xpath("f:location", namespaces=NS) == []
    if diagnostics is not None:
        assert value(issue, "f:diagnostics") == diagnostics
    return bundle


def check_error(response: httpx.Response, kind: str, request: bytes | None, outcome: str,
                diagnostics: str | None = None, destination: str | None = GP_ASID) -> etree._Element:
    return check_response(response, kind, status=ROWS[outcome][0], answers=header_id(request) if request else None,
                          outcome=outcome, diagnostics=diagnostics, destination=destination)


def create(gp: httpx.Client, server: Server, nhs_number: str, **kwargs: Any) -> httpx.Response:
    body = message("create", nhs_number, **kwargs)
    response = send(gp, server, "create", body)
    check_response(response, "create", status=201, answers=header_id(body))
    return response


def r4_search(server: Server, nhs_number: str) -> dict[str, Any]:
    with server.client() as http:
        response = http.get(f"{server.fgm}/Flag", params={"patient:identifier": f"{NHS_SYSTEM}|{nhs_number}"},
                            headers=server.headers(("B0370",)))
    assert response.status_code == 200
    return dict(response.json())


# ---------------------------------------------------------------------------------------------
# Query
# ---------------------------------------------------------------------------------------------


def test_query_found_returns_the_flag_with_its_contained_patient(server: Server, gp: httpx.Client) -> None:
    body = message("query", GIRL)
    response = send(gp, server, "query", body, soap_action=f'"{QUERY}"')
    bundle = check_response(response, "query", status=200, answers=header_id(body))
    [indicator] = [i for i in server.history(GIRL) if i.status is IndicatorStatus.ACTIVE]
    resources = bundle.xpath("f:entry/f:resource/*", namespaces=NS)
    assert [etree.QName(r).localname for r in resources] == ["MessageHeader", "Flag"]
    header, flag = resources
    assert value(header, "f:data/f:reference") == f"Flag/{indicator.id}"
    assert value(flag, "f:id") == indicator.id
    assert value(flag, "f:meta/f:profile") == NHS + "StructureDefinition/spine-ris-flag-1-0"
    assert value(flag, "f:status") == "active"
    assert value(flag, "f:period/f:start") == indicator.assessment_date.isoformat()
    assert flag.xpath("f:period/f:end", namespaces=NS) == []
    assert value(flag, "f:code/f:coding/f:system") == NHS + "ValueSet/risk-indicator-type-1-0"
    assert value(flag, "f:code/f:coding/f:code") == "FGM"
    [patient] = flag.xpath("f:contained/f:Patient", namespaces=NS)
    assert value(flag, "f:subject/f:reference") == "#" + value(patient, "f:id")
    assert value(patient, "f:meta/f:profile") == NHS + "StructureDefinition/spine-ris-patient-1-0"
    assert value(patient, "f:identifier/f:system") == NHS + "Id/nhs-number"
    assert value(patient, "f:identifier/f:value") == GIRL
    # spine-ris-patient-1-0: the identifier only.
    assert [etree.QName(c).localname for c in patient] == ["id", "meta", "identifier"]
    assert response.headers["x-request-id"]


def test_query_without_an_indicator_is_404_no_record_found(server: Server, gp: httpx.Client) -> None:
    body = message("query", server.add_patient())
    check_error(send(gp, server, "query", body), "query", body, "NO_RECORD_FOUND",
                "No active FGM risk indicator is held for this patient")


@pytest.mark.parametrize("content_type", ["text/xml; charset=utf-8", "application/xml+fhir", "application/fhir+xml",
                                          "application/xml", "TEXT/XML"])
def test_xml_content_types_are_accepted(server: Server, gp: httpx.Client, content_type: str) -> None:
    body = message("query", GIRL)
    check_response(send(gp, server, "query", body, content_type=content_type), "query", status=200,
                   answers=header_id(body))


def test_json_query_gets_a_json_answer(server: Server, gp: httpx.Client) -> None:
    body = json_query(GIRL)
    response = send(gp, server, "query", body, content_type="application/json+fhir")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_RESPONSE
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "message"
    header, flag = (entry["resource"] for entry in bundle["entry"])
    assert header["resourceType"] == "MessageHeader"
    assert header["event"] == {"system": NHS + "ValueSet/message-event-2-0", "code": RESPONSE_EVENT["query"]}
    assert header["response"] == {"identifier": json.loads(body)["entry"][0]["resource"]["id"], "code": "ok"}
    assert header["source"] == {"endpoint": f"urn:nhs:addressing:asid:{SERVICE_ASID}"}
    assert header["destination"] == [{"endpoint": f"urn:nhs:addressing:asid:{GP_ASID}"}]
    assert header["data"] == [{"reference": f"Flag/{flag['id']}"}]
    assert flag["resourceType"] == "Flag" and flag["status"] == "active"
    assert flag["contained"][0]["identifier"] == [{"system": NHS + "Id/nhs-number", "value": GIRL}]

    missing = send(gp, server, "query", json_query(server.add_patient()), content_type="application/fhir+json")
    assert missing.status_code == 404 and missing.headers["content-type"] == JSON_RESPONSE
    outcome = missing.json()["entry"][1]["resource"]
    assert outcome["issue"][0]["details"]["coding"] == [{"system": NHS + "ValueSet/spine-response-code-2-0",
                                                         "code": "NO_RECORD_FOUND", "display": "No record found"}]


# ---------------------------------------------------------------------------------------------
# Create and delete, and the same store as R4
# ---------------------------------------------------------------------------------------------


def test_create_then_query_then_delete_with_reason_1(server: Server, gp: httpx.Client) -> None:
    child = server.add_patient()
    assessed = date.today() - timedelta(days=12)
    response = create(gp, server, child, assessed=assessed)
    bundle = etree.fromstring(response.content)
    assert len(bundle.xpath("f:entry", namespaces=NS)) == 1  # the header only, no data
    assert bundle.xpath("f:entry/f:resource/f:MessageHeader/f:data", namespaces=NS) == []
    [stored] = server.history(child)
    assert stored.status is IndicatorStatus.ACTIVE and stored.assessment_date == assessed
    assert (stored.created_by.asid, stored.created_by.user_id, stored.created_by.role_profile_id,
            stored.created_by.org_code) == (GP_ASID, "200009876204", "100077650987", "RKE")

    query = message("query", child)
    found = check_response(send(gp, server, "query", query), "query", status=200, answers=header_id(query))
    assert value(found, "f:entry/f:resource/f:Flag/f:id") == stored.id
    assert value(found, "f:entry/f:resource/f:Flag/f:period/f:start") == assessed.isoformat()

    delete = message("delete", child, reason="1")
    response = send(gp, server, "delete", delete, soap_action=f'"{DELETE}"')
    bundle = check_response(response, "delete", status=200, answers=header_id(delete))
    assert len(bundle.xpath("f:entry", namespaces=NS)) == 1
    [removed] = server.history(child)
    assert removed.status is IndicatorStatus.INACTIVE
    assert removed.removal is not None and removed.removal.reason is RemovalReason.NO_LONGER_AT_RISK
    assert removed.removal.reason.value == "1" and removed.removal.by.asid == GP_ASID

    # R4 shows the removal (status inactive) but never DSTU2 reason 1.
    with server.client() as http:
        flag = http.get(f"{server.fgm}/Flag/{stored.id}", headers=server.headers(("B0370",)))
    assert flag.status_code == 200
    assert flag.json()["status"] == "inactive" and "extension" not in flag.json()
    assert r4_search(server, child)["total"] == 0

    again = message("query", child)
    check_error(send(gp, server, "query", again), "query", again, "NO_RECORD_FOUND")
    delete_again = message("delete", child)
    check_error(send(gp, server, "delete", delete_again), "delete", delete_again, "NO_RECORD_FOUND")


@pytest.mark.parametrize(("reason", "status"), [("0", IndicatorStatus.ENTERED_IN_ERROR),
                                                ("2", IndicatorStatus.INACTIVE)])
def test_delete_reasons_0_and_2_are_the_r4_reasons(server: Server, gp: httpx.Client, reason: str,
                                                   status: IndicatorStatus) -> None:
    child = server.add_patient()
    create(gp, server, child)
    delete = message("delete", child, reason=reason)
    check_response(send(gp, server, "delete", delete), "delete", status=200, answers=header_id(delete))
    [removed] = server.history(child)
    assert removed.status is status and removed.removal is not None and removed.removal.reason.value == reason
    with server.client() as http:
        flag = http.get(f"{server.fgm}/Flag/{removed.id}", headers=server.headers(("B0370",))).json()
    assert flag["status"] == status.value
    assert flag["extension"][0]["valueCoding"]["code"] == reason


def test_created_over_dstu2_is_found_over_r4(server: Server, gp: httpx.Client) -> None:
    child = server.add_patient()
    create(gp, server, child, assessed=date.today() - timedelta(days=3))
    found = r4_search(server, child)
    assert found["total"] == 1
    flag = found["entry"][0]["resource"]
    assert flag["status"] == "active" and flag["subject"]["identifier"]["value"] == child
    assert flag["period"]["start"] == (date.today() - timedelta(days=3)).isoformat()


def test_created_over_r4_is_found_over_dstu2_and_removed_over_r4_is_gone(server: Server, gp: httpx.Client) -> None:
    child = server.add_patient()
    with server.client() as http:
        created = http.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(child)),
                            headers={**server.headers(), "Content-Type": "application/fhir+json"})
        assert created.status_code == 201, created.text
        flag = created.json()
        query = message("query", child)
        found = check_response(send(gp, server, "query", query), "query", status=200, answers=header_id(query))
        assert value(found, "f:entry/f:resource/f:Flag/f:id") == flag["id"]
        removed = http.put(f"{server.fgm}/Flag/{flag['id']}", content=json.dumps(removal_body(flag)),
                           headers={**server.headers(), "Content-Type": "application/fhir+json"})
        assert removed.status_code == 200, removed.text
    query = message("query", child)
    check_error(send(gp, server, "query", query), "query", query, "NO_RECORD_FOUND")
    # a new indicator may be created after a removal
    create(gp, server, child)


def test_create_when_a_flag_is_already_set_is_a_422_warning(server: Server, gp: httpx.Client) -> None:
    child = server.add_patient()
    create(gp, server, child)
    body = message("create", child)
    check_error(send(gp, server, "create", body), "create", body, "FLAG_ALREADY_SET",
                "The patient already has an active FGM risk indicator")
    assert len(server.history(child)) == 1


# ---------------------------------------------------------------------------------------------
# Every error row of DIGEST §1.7 that the service can reach
# ---------------------------------------------------------------------------------------------


def _set(path: str, new: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        one(root, path).set("value", new)

    return change


def _remove(path: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        element = one(root, path)
        element.getparent().remove(element)

    return change


PARAMETERS = "f:entry/f:resource/f:Parameters"
FLAG = "f:entry/f:resource/f:Flag"


def _period_end(day: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        etree.SubElement(one(root, f"{FLAG}/f:period"), f"{{{FHIR}}}end").set("value", day)

    return change


def _error_rows(server: Server, patients: list[str]) -> list[tuple[str, str, bytes, str]]:
    """(case, interaction, message, spine code): none of them changes anything."""

    def patient(**kwargs: Any) -> str:
        patients.append(server.add_patient(**kwargs))
        return patients[-1]

    child = patient()
    valid = patient()
    bad = invalid_check_digit(valid)
    today = date.today()
    return [
        ("query: invalid check digit", "query", message("query", bad), "INVALID_NHS_NUMBER"),
        ("query: not 10 digits", "query", message("query", "99900000"), "INVALID_NHS_NUMBER"),
        ("query: not in demographics", "query", message("query", NOT_IN_DEMOGRAPHICS), "INVALID_NHS_NUMBER"),
        ("query: not verified", "query", message("query", patient(verified=False)), "INVALID_NHS_NUMBER"),
        ("create: invalid check digit", "create", message("create", bad), "INVALID_NHS_NUMBER"),
        ("create: not verified", "create", message("create", patient(verified=False)), "INVALID_NHS_NUMBER"),
        ("delete: invalid check digit", "delete", message("delete", bad), "INVALID_NHS_NUMBER"),
        ("delete: not in demographics", "delete", message("delete", NOT_IN_DEMOGRAPHICS), "INVALID_NHS_NUMBER"),
        ("create: over 18", "create", message("create", patient(age=18)), "PATIENT_OVER_18"),
        ("create: 18 today", "create", message("create", patient(birth_date=years_ago(today, 18))),
         "PATIENT_OVER_18"),
        ("create: male", "create", message("create", patient(gender=Gender.MALE)), "INVALID_PARAMETER"),
        ("create: assessment date in the future", "create",
         message("create", child, assessed=today + timedelta(days=2)), "INVALID_PARAMETER"),
        ("create: assessment date not a date", "create",
         message("create", child, change=_set(f"{FLAG}/f:period/f:start", "2015-02")), "INVALID_PARAMETER"),
        ("create: status not active", "create", message("create", child, change=_set(f"{FLAG}/f:status", "inactive")),
         "INVALID_PARAMETER"),
        ("create: period.end (0..0 in spine-ris-flag-1-0)", "create",
         message("create", child, change=_period_end(today.isoformat())), "INVALID_PARAMETER"),
        ("create: not the FGM code", "create",
         message("create", child, change=_set(f"{FLAG}/f:code/f:coding/f:code", "XYZ")), "INVALID_PARAMETER"),
        ("query: risk indicator not FGM", "query",
         message("query", child, change=_set(f"{PARAMETERS}/f:parameter[f:name/@value='RiskIndicator']/f:valueString",
                                             "CPIS")), "INVALID_PARAMETER"),
        ("query: NHS number missing", "query",
         message("query", child, change=_remove(f"{PARAMETERS}/f:parameter[f:name/@value='NHSNumber']")),
         "INVALID_PARAMETER"),
        ("delete: no reason", "delete",
         message("delete", child, change=_remove(f"{PARAMETERS}/f:parameter[f:name/@value='FGMDeleteReason']")),
         "INVALID_PARAMETER"),
        ("delete: unknown reason", "delete", message("delete", child, reason="7"), "INVALID_PARAMETER"),
        ("delete: no indicator", "delete", message("delete", child), "NO_RECORD_FOUND"),
        ("create: subject not the contained Patient", "create",
         message("create", child, change=_set(f"{FLAG}/f:subject/f:reference", "#nobody")), "MESSAGE_NOT_WELL_FORMED"),
        ("create: author without SDS role profile id", "create",
         message("create", child, change=_remove("f:entry/f:resource/f:Practitioner/f:identifier"
                                                 "[f:system/@value='http://fhir.nhs.net/Id/sds-role-profile-id']")),
         "AUTHOR_CREDENTIALS_ERROR"),
        ("delete: author not in the Bundle", "delete",
         message("delete", child, change=_set("f:entry/f:resource/f:MessageHeader/f:author/f:reference",
                                              "Practitioner/missing")), "MESSAGE_NOT_WELL_FORMED"),
    ]


def test_every_error_row(server: Server, gp: httpx.Client) -> None:
    patients: list[str] = []
    for case, kind, body, code in _error_rows(server, patients):
        response = send(gp, server, kind, body, request_id=f"dstu2-row-{uuid.uuid4()}")
        check_error(response, kind, body, code)
        [record] = server.audit_for(response.headers["x-request-id"])
        assert (record.event.api, record.event.interaction) == ("fgm-dstu2", kind), case
        assert (record.event.status, record.event.outcome) == (ROWS[code][0], code), case
        assert record.event.system_asid == GP_ASID, case
    for number in [*patients, NOT_IN_DEMOGRAPHICS]:
        assert server.history(number) == []


def test_create_with_a_period_end_is_refused_not_dropped(server: Server, gp: httpx.Client) -> None:
    child = server.add_patient()
    body = message("create", child, change=_period_end((date.today() + timedelta(days=30)).isoformat()))
    check_error(send(gp, server, "create", body), "create", body, "INVALID_PARAMETER",
                "Flag.period.end is not allowed: an FGM risk indicator has no end date")
    assert server.history(child) == []


def test_bad_trace_ids_are_an_invalid_parameter(server: Server, gp: httpx.Client) -> None:
    response = gp.post(f"{server.base}/fhir/fgm/query", content=message("query", GIRL),
                       headers={"Content-Type": "text/xml", "X-Request-ID": "not allowed!"})
    check_error(response, "query", None, "INVALID_PARAMETER", destination=None)


def test_messages_over_1_mib_are_refused(server: Server, gp: httpx.Client) -> None:
    body = message("query", GIRL).replace(b"</Bundle>", b"<!--" + b"x" * (1024 * 1024) + b"--></Bundle>")
    # Refused before authentication (the body is not read): so the answer has no destination.
    check_error(send(gp, server, "query", body), "query", None, "MESSAGE_NOT_WELL_FORMED",
                "The message is larger than 1 MiB", destination=None)


@pytest.mark.parametrize("body", [
    b"", b"not xml at all", b"<Bundle xmlns='http://hl7.org/fhir'><type value='message'/>",
    b'<Patient xmlns="http://hl7.org/fhir"/>', b"<Bundle xmlns='urn:other'/>", b'{"resourceType": "Bundle"',
])
def test_unreadable_messages_are_not_well_formed(server: Server, gp: httpx.Client, body: bytes) -> None:
    check_error(send(gp, server, "query", body), "query", None, "MESSAGE_NOT_WELL_FORMED")


def test_a_bundle_that_is_not_a_message_is_not_well_formed(server: Server, gp: httpx.Client) -> None:
    body = message("query", GIRL, change=_set("f:type", "collection"))
    check_error(send(gp, server, "query", body), "query", None, "MESSAGE_NOT_WELL_FORMED", "Bundle.type is not message")


def test_unsupported_content_type_is_not_well_formed(server: Server, gp: httpx.Client) -> None:
    body = message("query", GIRL)
    response = send(gp, server, "query", body, content_type="text/plain")
    check_error(response, "query", None, "MESSAGE_NOT_WELL_FORMED")


@pytest.mark.parametrize("doctype", [
    b'<!DOCTYPE Bundle [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE Bundle [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    b'<!DOCTYPE Bundle SYSTEM "http://127.0.0.1:9/evil.dtd">',
])
def test_dtds_and_external_entities_are_refused(server: Server, gp: httpx.Client, doctype: bytes) -> None:
    body = message("query", GIRL).replace(b"?>", b"?>" + doctype, 1).replace(b'value="FGM"', b'value="&xxe;"')
    response = send(gp, server, "query", body)
    check_error(response, "query", None, "MESSAGE_NOT_WELL_FORMED", "Document type declarations are not allowed")
    assert b"root:" not in response.content


def test_the_event_must_be_the_one_of_the_path(server: Server, gp: httpx.Client) -> None:
    child = server.add_patient()
    body = message("create", child)
    check_error(send(gp, server, "query", body), "query", body, "INVALID_PARAMETER",
                "MessageHeader.event.code is not the interaction of the URL it was posted to")
    query = message("query", child)
    check_error(send(gp, server, "delete", query), "delete", query, "INVALID_PARAMETER")
    assert server.history(child) == []


@pytest.mark.parametrize("kind", ["query", "create", "delete"])
def test_soap_action_when_present_must_match_the_event(server: Server, gp: httpx.Client, kind: str) -> None:
    child = server.add_patient()
    wrong = QUERY if kind != "query" else CREATE
    body = message(kind, child)
    check_error(send(gp, server, kind, body, soap_action=f'"{wrong}"'), kind, body, "INVALID_PARAMETER",
                "The SOAPAction header does not match MessageHeader.event.code")
    assert server.history(child) == []
    # The right one, quoted as in the guide, unquoted, or with the pre-2019 "/" separator, is accepted.
    if kind == "create":
        for action in (f'"{CREATE}"', CREATE):
            other = server.add_patient()
            create_body = message("create", other)
            check_response(send(gp, server, "create", create_body, soap_action=action), "create", status=201,
                           answers=header_id(create_body))
    else:
        for action in (f'"{REQUEST_EVENT[kind]}"', REQUEST_EVENT[kind], REQUEST_EVENT[kind].replace("sync:", "sync/")):
            body = message(kind, child)
            check_error(send(gp, server, kind, body, soap_action=action), kind, body, "NO_RECORD_FOUND")


# ---------------------------------------------------------------------------------------------
# Mutual TLS and the ASID checks (DIGEST §4.3)
# ---------------------------------------------------------------------------------------------


def test_source_asid_must_be_the_certificates_system(server: Server, gp: httpx.Client) -> None:
    body = message("query", GIRL, source=QUERY_ONLY_ASID)
    check_error(send(gp, server, "query", body), "query", body, "ASID_CHECK_FAILED",
                "MessageHeader.source.endpoint is not the ASID of the client certificate",
                destination=QUERY_ONLY_ASID)


def test_the_nhs_query_example_s_own_source_asid_is_refused(server: Server, gp: httpx.Client) -> None:
    # The guide's query example sends from 047192794540, which no certificate here belongs to.
    body = (FIXTURES / "query-v2-request.xml").read_bytes()
    check_error(send(gp, server, "query", body), "query", body, "ASID_CHECK_FAILED", destination="047192794540")


def test_destination_asid_must_be_this_service(server: Server, gp: httpx.Client) -> None:
    body = message("query", GIRL, destination="990101234568")
    check_error(send(gp, server, "query", body), "query", body, "ASID_CHECK_FAILED",
                "MessageHeader.destination.endpoint is not the ASID of this service")


def test_asids_are_checked_before_the_content(server: Server, gp: httpx.Client) -> None:
    body = message("query", invalid_check_digit(GIRL), destination="990101234568")
    check_error(send(gp, server, "query", body), "query", body, "ASID_CHECK_FAILED")


@pytest.mark.parametrize("kind", ["create", "delete"])
def test_query_only_system_may_not_create_or_delete(server: Server, query_only: httpx.Client, kind: str) -> None:
    child = server.add_patient()
    body = message(kind, child, source=QUERY_ONLY_ASID)
    rid = f"dstu2-asid-{uuid.uuid4()}"
    check_error(send(query_only, server, kind, body, request_id=rid), kind, body, "ASID_CHECK_FAILED",
                "The sending system is not registered for this interaction", destination=QUERY_ONLY_ASID)
    assert server.history(child) == []
    [record] = server.audit_for(rid)
    assert (record.event.status, record.event.outcome, record.event.system_asid) == (
        403, "ASID_CHECK_FAILED", QUERY_ONLY_ASID)
    assert record.event.user_id == "200009876204"


def test_query_only_system_may_query(server: Server, query_only: httpx.Client) -> None:
    body = message("query", GIRL, source=QUERY_ONLY_ASID)
    check_response(send(query_only, server, "query", body), "query", status=200, answers=header_id(body),
                   destination=QUERY_ONLY_ASID)


@pytest.mark.parametrize("kind", ["query", "create", "delete"])
def test_no_client_certificate_is_refused_with_a_dstu2_answer(server: Server, kind: str) -> None:
    rid = f"dstu2-nocert-{uuid.uuid4()}"
    body = message(kind, GIRL)
    with server.client() as http:
        response = send(http, server, kind, body, request_id=rid)
    # The refusal still answers the message (response.identifier, and destination: 1..1 in the profile).
    check_error(response, kind, body, "ASID_CHECK_FAILED", "A client certificate is required", destination=GP_ASID)
    [record] = server.audit_for(rid)
    assert (record.event.api, record.event.interaction, record.event.status, record.event.outcome) == (
        "fgm-dstu2", kind, 403, "ASID_CHECK_FAILED")
    assert record.event.system_asid is None


def test_certificate_from_another_ca_fails_the_handshake(server: Server, tmp_path: Path) -> None:
    other_ca = certs.create_ca(tmp_path / "other-ca", "some other CA")
    pair = certs.issue(other_ca, certs.CertPair(tmp_path / "client.pem", tmp_path / "client.key"),
                       common_name=GP_ASID, org="B86022", client=True)
    with server.client(cert=(str(pair.cert), str(pair.key))) as http:
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            send(http, server, "query", message("query", GIRL))
    # At the TLS layer: with TLS 1.2 the handshake itself fails; with TLS 1.3 the client's half of the
    # handshake completes, and the server closes the connection without reading anything.
    assert _raw_exchange(server, (str(pair.cert), str(pair.key)), ssl.TLSVersion.TLSv1_2) == "handshake failed"
    assert _raw_exchange(server, (str(pair.cert), str(pair.key)), ssl.TLSVersion.TLSv1_3) in (
        "handshake failed", "closed")
    # The same exchange with a sandbox certificate gets an HTTP answer.
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert _raw_exchange(server, system_cert(server, GP_ASID), version).startswith("HTTP/1.1 200")


def _raw_exchange(server: Server, cert: tuple[str, str], version: ssl.TLSVersion) -> str:
    context = server.tls(cert)
    context.minimum_version = context.maximum_version = version
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        try:
            tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
        except ssl.SSLError:
            return "handshake failed"
        with tls:
            try:
                tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                answer = tls.recv(1024)
            except (ssl.SSLError, ConnectionError):
                return "closed"
    return answer.decode("latin-1") if answer else "closed"


def _sandbox_ca(server: Server) -> certs.CertPair:
    return certs.CertPair(server.data_dir / "tls" / "ca.pem", server.data_dir / "tls" / "ca.key")


def test_certificate_of_an_unregistered_system_is_refused(server: Server, tmp_path: Path) -> None:
    pair = certs.issue(_sandbox_ca(server), certs.CertPair(tmp_path / "c.pem", tmp_path / "c.key"),
                       common_name="123456789012", org="X99", client=True)
    rid = f"dstu2-unregistered-{uuid.uuid4()}"
    body = message("query", GIRL, source="123456789012")
    with server.client(cert=(str(pair.cert), str(pair.key))) as http:
        response = send(http, server, "query", body, request_id=rid)
    check_error(response, "query", body, "ASID_CHECK_FAILED",
                "The client certificate does not belong to a registered system", destination="123456789012")
    [record] = server.audit_for(rid)
    assert (record.event.status, record.event.outcome, record.event.system_asid) == (403, "ASID_CHECK_FAILED", None)


def test_a_registered_asid_with_another_pinned_certificate_is_refused(server: Server, tmp_path: Path) -> None:
    # The sandbox pins each system's certificate: a second certificate with the same CN is not that system.
    pair = certs.issue(_sandbox_ca(server), certs.CertPair(tmp_path / "c.pem", tmp_path / "c.key"),
                       common_name=GP_ASID, org="B86022", client=True)
    body = message("query", GIRL)
    with server.client(cert=(str(pair.cert), str(pair.key))) as http:
        response = send(http, server, "query", body)
    check_error(response, "query", body, "ASID_CHECK_FAILED", destination=GP_ASID)


def test_systems_cli_registers_and_removes_a_system_live(server: Server, tmp_path: Path) -> None:
    asid = "300000000999"
    pair = certs.issue(_sandbox_ca(server), certs.CertPair(tmp_path / "s.pem", tmp_path / "s.key"),
                       common_name=asid, org="Y01", client=True)
    runner = CliRunner()
    data_dir = str(server.data_dir)
    added = runner.invoke(systems_cli, ["add", "--data-dir", data_dir, "--asid", asid, "--ods", "y01",
                                        "--interaction", "query", "--cert", str(pair.cert)])
    try:
        assert added.exit_code == 0, added.output
        entry = json.loads(added.output)
        assert entry["ods"] == "Y01" and entry["interactions"] == [QUERY] and len(entry["cert_sha256"]) == 64
        listed = runner.invoke(systems_cli, ["list", "--data-dir", data_dir, "--json"])
        assert asid in [s["asid"] for s in json.loads(listed.output)["systems"]]
        assert runner.invoke(systems_cli, ["add", "--data-dir", data_dir, "--asid", asid, "--ods", "Y01",
                                           "--interaction", "query"]).exit_code != 0  # already registered
        with server.client(cert=(str(pair.cert), str(pair.key))) as http:
            body = message("query", GIRL, source=asid)
            check_response(send(http, server, "query", body), "query", status=200, answers=header_id(body),
                           destination=asid)
            create_body = message("create", server.add_patient(), source=asid)
            check_error(send(http, server, "create", create_body), "create", create_body, "ASID_CHECK_FAILED",
                        destination=asid)
    finally:
        removed = runner.invoke(systems_cli, ["remove", "--data-dir", data_dir, "--asid", asid])
    assert removed.exit_code == 0, removed.output
    body = message("query", GIRL, source=asid)
    with server.client(cert=(str(pair.cert), str(pair.key))) as http:
        response = send(http, server, "query", body)
    check_error(response, "query", body, "ASID_CHECK_FAILED", destination=asid)
    assert runner.invoke(systems_cli, ["remove", "--data-dir", data_dir, "--asid", asid]).exit_code != 0
    gp_entries = json.loads(runner.invoke(systems_cli, ["list", "--data-dir", data_dir, "--json"]).output)
    # back to the sandbox's own systems (its clinical systems and, since CP-IS, its local authorities)
    assert {s["asid"] for s in gp_entries["systems"]} == {s["asid"] for s in server.facts["systems"]}
    assert {GP_ASID, QUERY_ONLY_ASID} <= {s["asid"] for s in gp_entries["systems"]}


def test_an_unreadable_registry_refuses_every_system_until_fixed(server: Server, gp: httpx.Client) -> None:
    registry = server.data_dir / "systems.json"
    original = registry.read_bytes()
    try:
        registry.write_text('{"systems": [')
        body = message("query", GIRL)
        check_error(send(gp, server, "query", body), "query", body, "ASID_CHECK_FAILED",
                    "The client certificate does not belong to a registered system")
    finally:
        registry.write_bytes(original)
    body = message("query", GIRL)
    check_response(send(gp, server, "query", body), "query", status=200, answers=header_id(body))


# ---------------------------------------------------------------------------------------------
# Audit
# ---------------------------------------------------------------------------------------------


def test_messages_are_audited_with_the_system_and_the_practitioner(server: Server, gp: httpx.Client) -> None:
    child = server.add_patient()
    rid = f"dstu2-audit-{uuid.uuid4()}"
    body = message("create", child)
    response = gp.post(f"{server.base}/fhir/fgm/create", content=body,
                       headers={"Content-Type": "text/xml", "X-Request-ID": rid, "X-Correlation-ID": "corr-7",
                                "TraceID": "trace-7"})
    assert response.status_code == 201
    assert (response.headers["x-request-id"], response.headers["x-correlation-id"], response.headers["traceid"]) == (
        rid, "corr-7", "trace-7")
    [record] = server.audit_for(rid)
    event = record.event
    assert (event.api, event.interaction, event.status, event.outcome) == ("fgm-dstu2", "create", 201, "OK")
    assert (event.system_asid, event.system_ods) == (GP_ASID, "B86022")
    assert (event.user_id, event.role_profile_id, event.org_code) == ("200009876204", "100077650987", "RKE")
    assert (event.correlation_id, event.trace_id) == ("corr-7", "trace-7")
    assert (event.nhs_number, event.resource_id) == (child, server.history(child)[0].id)

    rid = f"dstu2-audit-{uuid.uuid4()}"
    send(gp, server, "delete", message("delete", child), request_id=rid)
    [record] = server.audit_for(rid)
    assert (record.event.interaction, record.event.status, record.event.outcome) == ("delete", 200, "OK")
    assert (record.event.system_asid, record.event.user_id, record.event.role_profile_id) == (
        GP_ASID, "200009876204", "100077650987")

    rid = f"dstu2-audit-{uuid.uuid4()}"
    send(gp, server, "query", message("query", child), request_id=rid)
    [record] = server.audit_for(rid)
    assert (record.event.interaction, record.event.status, record.event.outcome) == (
        "query", 404, "NO_RECORD_FOUND")
    # The guide's query example identifies its user by a local id only, and its organisation as SDT.
    assert (record.event.user_id, record.event.role_profile_id, record.event.org_code) == ("local:12456", "", "SDT")
    assert record.event.nhs_number == child


def test_found_query_is_audited_with_the_flag(server: Server, gp: httpx.Client) -> None:
    rid = f"dstu2-audit-{uuid.uuid4()}"
    response = send(gp, server, "query", json_query(GIRL), content_type="application/fhir+json", request_id=rid)
    assert response.status_code == 200
    [record] = server.audit_for(rid)
    event = record.event
    assert (event.interaction, event.status, event.outcome, event.nhs_number) == ("query", 200, "OK", GIRL)
    assert event.resource_id == response.json()["entry"][1]["resource"]["id"]
    assert (event.system_asid, event.user_id, event.role_profile_id, event.org_code) == (
        GP_ASID, "200009876204", "100077650987", "SDT")


def test_other_methods_are_not_allowed(server: Server, gp: httpx.Client) -> None:
    # As every DSTU2 answer: a response message (tests/api/test_router_answers.py checks it whole).
    response = gp.get(f"{server.base}/fhir/fgm/query")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.headers["content-type"] == XML_RESPONSE
    assert gp.post(f"{server.base}/fhir/fgm/update", content=b"").status_code == 404
