"""Helpers for the security suite: reading refusals of every API, the caller kinds, and liveness."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
from lxml import etree

from ..support import Server

FHIR_NS = {"f": "http://hl7.org/fhir"}
FGM_DENIED = "The sender or receiver's ASID is not authorised for this interaction"
CPIS_DENIED = "Access has been denied to process this request"
BAD_TOKEN = "Missing or invalid access token"
GP_ASID = "047192794544"  # the sandbox's clinical system, registered for every FGM-IS DSTU2 interaction


def rid(prefix: str) -> str:
    return f"sec-{prefix}-{uuid.uuid4()}"


def r4_refusal(response: httpx.Response) -> tuple[int, str, str, str]:
    """(status, issue type, details code, diagnostics) of an R4 OperationOutcome; fails on anything else.
    The sandbox's precise token-refusal reason (tests/api/test_r4_authentication.py checks them) is left out."""
    assert response.headers.get("content-type", "").startswith("application/fhir+json"), response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    [issue] = body["issue"]
    diagnostics = re.sub(r" \(sandbox only: .*\)$", "", issue["diagnostics"]) if issue["diagnostics"].startswith(
        BAD_TOKEN) else issue["diagnostics"]
    return response.status_code, issue["code"], issue["details"]["coding"][0]["code"], diagnostics


def dstu2_refusal(response: httpx.Response) -> tuple[int, str, str]:
    """(status, spine code, diagnostics) of a DSTU2 response message carrying an OperationOutcome."""
    if "json" in response.headers.get("content-type", ""):
        entries = [e["resource"] for e in response.json()["entry"]]
        [outcome] = [r for r in entries if r["resourceType"] == "OperationOutcome"]
        issue = outcome["issue"][0]
        return response.status_code, issue["details"]["coding"][0]["code"], issue["diagnostics"]
    assert response.headers.get("content-type", "").startswith("application/xml+fhir"), response.text
    root = etree.fromstring(response.content)
    [issue] = root.xpath("f:entry/f:resource/f:OperationOutcome/f:issue", namespaces=FHIR_NS)
    code = issue.xpath("f:details/f:coding/f:code/@value", namespaces=FHIR_NS)[0]
    diagnostics = issue.xpath("f:diagnostics/@value", namespaces=FHIR_NS)[0]
    return response.status_code, str(code), str(diagnostics)


def assert_alive(server: Server, within: float = 2.0) -> None:
    """The server still answers, and quickly: after every hostile batch."""
    started = time.monotonic()
    with server.client() as http:
        response = http.get(f"{server.base}/_ping", timeout=within + 5)
    assert response.status_code == 200
    assert time.monotonic() - started < within


def cpis_landed(server: Server) -> bool:
    """CP-IS is being built alongside: its rows run once its routes and local authority systems exist."""
    with server.client() as http:
        if http.get(f"{server.base}/cpis/FHIR/R4/metadata").status_code != 200:
            return False
    return len(systems_of_kind(server, "local-authority")) >= 2


def systems_of_kind(server: Server, kind: str) -> list[dict[str, Any]]:
    return [s for s in server.facts["systems"] if s.get("kind") == kind]


def cert_of(system: dict[str, Any]) -> tuple[str, str]:
    return system["cert"], system["key"]


def http_complete(answer: bytes) -> bool:
    """Whether a raw HTTP answer has arrived in full (head, and the body its Content-Length announces)."""
    head, separator, body = answer.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False
