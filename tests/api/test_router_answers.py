"""Requests no endpoint takes: 404 (unknown path) and 405 (a path served with other methods), answered like
every other request (request ids echoed, security headers), 405 with Allow; on the DSTU2 interactions' paths
as a DSTU2 response message."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from lxml import etree

from ..support import Server, assert_outcome
from .test_fgm_dstu2 import GP_ASID, JSON_RESPONSE, NS, RESPONSE_EVENT, SERVICE_ASID, XML_RESPONSE, system_cert, value

IDS = {"X-Request-ID": "router-1", "X-Correlation-ID": "corr.2", "TraceID": "trace:3"}
NOT_ALLOWED = "Method not allowed for this resource"


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/fgm/FHIR/R4/Flag", "GET, HEAD, POST"),
    ("DELETE", "/fgm/FHIR/R4/Flag/some-id", "GET, HEAD, PUT"),
    ("POST", "/fgm/FHIR/R4/metadata", "GET, HEAD"),
    ("DELETE", "/cpis/FHIR/R4/CareTeam", "GET, HEAD"),
    ("GET", "/cpis/FHIR/R4/notifications/$acknowledge", "POST"),
    ("PATCH", "/cpis/FHIR/R4", "POST"),
])
def test_405_names_the_allowed_methods_and_echoes_the_request_ids(server: Server, client: httpx.Client, method: str,
                                                                  path: str, allow: str) -> None:
    response = client.request(method, f"{server.base}{path}", headers=IDS)
    assert_outcome(response, 405, "METHOD_NOT_ALLOWED", NOT_ALLOWED, issue_type="not-supported")
    assert response.headers["allow"] == allow
    for name, sent in IDS.items():
        assert response.headers[name] == sent
    assert response.headers["cache-control"] == "no-store"


def test_404_echoes_the_request_ids_or_makes_one(server: Server, client: httpx.Client) -> None:
    response = client.get(f"{server.base}/fgm/FHIR/R4/Patient", headers=IDS)
    assert_outcome(response, 404, "RESOURCE_NOT_FOUND", "Resource not found", issue_type="not-found")
    for name, sent in IDS.items():
        assert response.headers[name] == sent
    made = client.get(f"{server.base}/nothing/here")
    assert made.status_code == 404
    uuid.UUID(made.headers["x-request-id"])
    assert "traceid" not in made.headers
    # An id that breaks the rule is not echoed back (a fresh one is made instead).
    bad = client.get(f"{server.base}/nothing/here", headers={"X-Request-ID": "not allowed!"})
    assert bad.status_code == 404 and bad.headers["x-request-id"] != "not allowed!"


def _dstu2_405(response: httpx.Response, kind: str, destination: str | None) -> etree._Element:
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == XML_RESPONSE
    bundle = etree.fromstring(response.content)
    assert value(bundle, "f:type") == "message"
    [header, outcome] = bundle.xpath("f:entry/f:resource/*", namespaces=NS)
    assert value(header, "f:event/f:code") == RESPONSE_EVENT[kind]
    assert value(header, "f:response/f:code") == "fatal-error"
    uuid.UUID(value(header, "f:response/f:identifier"))  # no message was sent: it answers none
    assert value(header, "f:source/f:endpoint") == f"urn:nhs:addressing:asid:{SERVICE_ASID}"
    if destination is None:
        assert header.xpath("f:destination", namespaces=NS) == []
    else:
        assert value(header, "f:destination/f:endpoint") == f"urn:nhs:addressing:asid:{destination}"
    assert value(outcome, "f:issue/f:severity") == "error"
    assert value(outcome, "f:issue/f:code") == "not-supported"
    assert value(outcome, "f:issue/f:details/f:coding/f:system") == "http://fhir.nhs.net/ValueSet/spine-response-code-2-0"
    assert value(outcome, "f:issue/f:details/f:coding/f:code") == "INVALID_PARAMETER"
    assert value(outcome, "f:issue/f:diagnostics") == (
        "Only POST is allowed: FGM-IS messages are posted to /fhir/fgm/query, create or delete")
    return bundle


@pytest.mark.parametrize(("method", "kind"), [("GET", "query"), ("PUT", "create"), ("DELETE", "delete")])
def test_other_methods_on_dstu2_paths_get_a_dstu2_message(server: Server, method: str, kind: str) -> None:
    with server.client(cert=system_cert(server, GP_ASID)) as gp:
        response = gp.request(method, f"{server.base}/fhir/fgm/{kind}", headers=IDS)
    _dstu2_405(response, kind, GP_ASID)
    for name, sent in IDS.items():
        assert response.headers[name] == sent


def test_a_dstu2_405_without_a_certificate_is_addressed_to_nobody(server: Server, client: httpx.Client) -> None:
    _dstu2_405(client.get(f"{server.base}/fhir/fgm/query"), "query", None)


def test_a_dstu2_405_in_json_when_asked(server: Server) -> None:
    with server.client(cert=system_cert(server, GP_ASID)) as gp:
        response = gp.get(f"{server.base}/fhir/fgm/query", headers={"Accept": "application/json+fhir"})
    assert response.status_code == 405 and response.headers["content-type"] == JSON_RESPONSE
    header = json.loads(response.content)["entry"][0]["resource"]
    assert header["destination"] == [{"endpoint": f"urn:nhs:addressing:asid:{GP_ASID}"}]
