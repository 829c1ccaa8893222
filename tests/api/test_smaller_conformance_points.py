"""Smaller conformance points: R4 Accept with another fhirVersion is 406; batch-response entries name the plan
they applied to; `sandbox describe` reports where the server really runs; DSTU2 answers in the format Accept
asks for explicitly."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from lxml import etree

from ..support import NHS_SYSTEM, Server, assert_outcome
from .cpis_helpers import batch, careplan, upload
from .test_fgm_dstu2 import GP_ASID, JSON_RESPONSE, NS, XML_RESPONSE, json_query, message, send, system_cert

GIRL = "9990000018"
NOT_ACCEPTABLE = "Accept must allow application/fhir+json or application/fhir+xml"


def _search(server: Server, client: httpx.Client, accept: str) -> httpx.Response:
    return client.get(f"{server.fgm}/Flag", params={"patient:identifier": f"{NHS_SYSTEM}|{GIRL}"},
                      headers=server.headers(Accept=accept))


@pytest.mark.parametrize("accept", ["application/fhir+json; fhirVersion=3.0", "application/fhir+xml;fhirVersion=1.0",
                                    'application/fhir+json; fhirVersion="5.0"'])
def test_accept_naming_another_fhir_version_is_406(server: Server, client: httpx.Client, accept: str) -> None:
    assert_outcome(_search(server, client, accept), 406, "NOT_ACCEPTABLE", NOT_ACCEPTABLE, issue_type="not-supported")
    assert_outcome(client.get(f"{server.cpis}/metadata", headers={"Accept": accept}), 406, "NOT_ACCEPTABLE",
                   NOT_ACCEPTABLE, issue_type="not-supported")


@pytest.mark.parametrize(("accept", "content_type"), [
    ("application/fhir+json; fhirVersion=4.0", "application/fhir+json; charset=utf-8"),
    ("application/fhir+json; fhirVersion=3.0, application/fhir+xml; fhirVersion=4.0",
     "application/fhir+xml; charset=utf-8"),
    ("application/fhir+json; fhirVersion=3.0, */*", "application/fhir+json; charset=utf-8"),
])
def test_accept_naming_r4_is_served(server: Server, client: httpx.Client, accept: str, content_type: str) -> None:
    response = _search(server, client, accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type


def test_batch_response_entries_name_the_plan_they_applied_to(server: Server) -> None:
    child = server.add_patient()
    response = upload(server, batch(careplan(child), careplan("9990000124")))
    assert response.status_code == 200, response.text
    created, refused = (entry["response"] for entry in response.json()["entry"])
    [plan] = server.stored(lambda store: store.read_plans(child))
    assert created["status"] == "201 Created"
    assert created["location"] == f"CarePlan/{plan.id}/_history/1" and created["etag"] == 'W/"1"'
    assert "location" not in refused
    again = upload(server, batch(careplan(child, office="01134960999"))).json()["entry"][0]["response"]
    assert again["status"] == "200 OK" and again["location"] == f"CarePlan/{plan.id}/_history/2"


def test_sandbox_describe_reports_the_address_the_server_runs_on(server: Server) -> None:
    facts = json.loads(subprocess.check_output(
        [sys.executable, "-m", "safeguarding", "sandbox", "describe", "--data-dir", str(server.data_dir), "--json"]))
    assert facts["base_url"] == f"https://127.0.0.1:{server.port}" and server.port != 8443
    assert facts["fgm_r4_base"] == server.fgm and facts["cpis_r4_base"] == server.cpis
    explicit = json.loads(subprocess.check_output(
        [sys.executable, "-m", "safeguarding", "sandbox", "describe", "--data-dir", str(server.data_dir), "--json",
         "--port", "9443"]))
    assert explicit["base_url"] == "https://127.0.0.1:9443"


@pytest.mark.parametrize(("body_kind", "accept", "answer"), [
    ("xml", "application/json+fhir", JSON_RESPONSE),
    ("xml", "application/fhir+json;q=0.9, application/xml;q=0.5", JSON_RESPONSE),
    ("json", "application/xml+fhir", XML_RESPONSE),
    ("json", "text/xml", XML_RESPONSE),
    ("json", "*/*", JSON_RESPONSE),  # no explicit choice: the request's own format
    ("xml", "*/*", XML_RESPONSE),
    ("json", "text/html", JSON_RESPONSE),
])
def test_dstu2_answers_in_the_format_accept_asks_for(server: Server, body_kind: str, accept: str, answer: str) -> None:
    body = message("query", GIRL) if body_kind == "xml" else json_query(GIRL)
    content_type = "text/xml" if body_kind == "xml" else "application/fhir+json"
    with server.client(cert=system_cert(server, GP_ASID)) as gp:
        response = gp.post(f"{server.base}/fhir/fgm/query", content=body,
                           headers={"Content-Type": content_type, "Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == answer
    if answer == JSON_RESPONSE:
        assert json.loads(response.content)["entry"][1]["resource"]["resourceType"] == "Flag"
    else:
        assert etree.fromstring(response.content).xpath("//f:Flag", namespaces=NS)


def test_dstu2_errors_follow_accept_too(server: Server) -> None:
    with server.client(cert=system_cert(server, GP_ASID)) as gp:
        response = send(gp, server, "query", b"<not a message", content_type="text/xml")
        assert response.status_code == 400 and response.headers["content-type"] == XML_RESPONSE
        asked = gp.post(f"{server.base}/fhir/fgm/query", content=b"<not a message",
                        headers={"Content-Type": "text/xml", "Accept": "application/fhir+json"})
    assert asked.status_code == 400 and asked.headers["content-type"] == JSON_RESPONSE
    assert json.loads(asked.content)["entry"][1]["resource"]["issue"][0]["details"]["coding"][0]["code"] == (
        "MESSAGE_NOT_WELL_FORMED")
