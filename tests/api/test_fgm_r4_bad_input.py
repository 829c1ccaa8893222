"""Malformed and hostile bodies: a 4xx OperationOutcome, never a 500, and nothing changes."""

from __future__ import annotations

import json

import httpx

from ..support import Server, assert_outcome, flag_body

NOT_WELL_FORMED = "The request body is not well-formed JSON or XML"


def post_raw(client: httpx.Client, server: Server, content: bytes, content_type: str) -> httpx.Response:
    return client.post(f"{server.fgm}/Flag", content=content,
                       headers={**server.headers(), "Content-Type": content_type})


def test_malformed_json(server: Server, client: httpx.Client) -> None:
    for content in (b"{not json", b"", b"[1,2]", b"\xff\xfe\x00", b'"a string"'):
        assert_outcome(post_raw(client, server, content, "application/fhir+json"), 400, "MESSAGE_NOT_WELL_FORMED",
                       NOT_WELL_FORMED, issue_type="structure")


def test_malformed_xml(server: Server, client: httpx.Client) -> None:
    assert_outcome(post_raw(client, server, b"<Flag xmlns='http://hl7.org/fhir'><status", "application/fhir+xml"),
                   400, "MESSAGE_NOT_WELL_FORMED", NOT_WELL_FORMED, issue_type="structure")


def test_xml_with_a_dtd_or_entities_is_refused_unresolved(server: Server, client: httpx.Client) -> None:
    child = server.add_patient()
    for doctype in ('<!DOCTYPE Flag [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
                    '<!DOCTYPE Flag [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'):
        xml = (f'{doctype}<Flag xmlns="http://hl7.org/fhir"><status value="active"/><code><coding>'
               f'<system value="http://snomed.info/sct"/><code value="902961000000107"/></coding></code>'
               f'<subject><identifier><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="{child}"/>'
               f'</identifier></subject><period><start value="2026-01-05"/></period></Flag>').encode()
        response = post_raw(client, server, xml, "application/fhir+xml")
        assert_outcome(response, 400, "MESSAGE_NOT_WELL_FORMED", "DTDs and entity declarations are not allowed",
                       issue_type="structure")
        assert b"root:" not in response.content
    assert server.history(child) == []


def test_wrong_resource_type(server: Server, client: httpx.Client) -> None:
    body = json.dumps({"resourceType": "Patient", "id": "x"}).encode()
    assert_outcome(post_raw(client, server, body, "application/fhir+json"), 400, "INVALID_RESOURCE",
                   "The request body must be a Flag resource")
    xml = b'<Patient xmlns="http://hl7.org/fhir"><id value="x"/></Patient>'
    assert_outcome(post_raw(client, server, xml, "application/fhir+xml"), 400, "INVALID_RESOURCE",
                   "The request body must be a Flag resource")


def test_unknown_elements_are_rejected_with_their_location(server: Server, client: httpx.Client) -> None:
    child = server.add_patient()
    body = {**flag_body(child), "riskLevel": "high"}
    response = post_raw(client, server, json.dumps(body).encode(), "application/fhir+json")
    outcome = assert_outcome(response, 400, "INVALID_RESOURCE", "The Flag does not conform to FHIR R4")
    assert outcome["issue"][0]["expression"] == ["Flag.riskLevel"]
    assert server.history(child) == []


def test_body_over_1_mib_is_413(server: Server, client: httpx.Client) -> None:
    child = server.add_patient()
    body = flag_body(child)
    body["id"] = "x"
    padded = json.dumps(body).encode()[:-1] + b', "implicitRules": "' + b"a" * (1024 * 1024) + b'"}'
    assert_outcome(post_raw(client, server, padded, "application/fhir+json"), 413, "REQUEST_TOO_LARGE",
                   "The request body is larger than 1 MiB", issue_type="too-long")
    assert server.history(child) == []


def test_wrong_content_type_is_415(server: Server, client: httpx.Client) -> None:
    child = server.add_patient()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        response = post_raw(client, server, json.dumps(flag_body(child)).encode(), content_type)
        assert_outcome(response, 415, "UNSUPPORTED_MEDIA_TYPE",
                       "Content-Type must be application/fhir+json or application/fhir+xml",
                       issue_type="not-supported")
    assert server.history(child) == []


def test_unknown_path_and_method(server: Server, client: httpx.Client) -> None:
    assert_outcome(client.get(f"{server.fgm}/Patient", headers=server.headers()), 404, "RESOURCE_NOT_FOUND",
                   "Resource not found", issue_type="not-found")
    assert_outcome(client.delete(f"{server.fgm}/Flag/abc", headers=server.headers()), 405, "METHOD_NOT_ALLOWED",
                   "Method not allowed for this resource", issue_type="not-supported")


def test_security_headers_and_no_server_version(server: Server, client: httpx.Client) -> None:
    response = client.get(f"{server.fgm}/metadata")
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "server" not in response.headers
