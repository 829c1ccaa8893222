"""The NHS number's identifier system: one rule for every API (domain/nhs_number.py). The published forms are
accepted in any case, a missing system is accepted, any other system is not an NHS number; the R4 APIs emit
https://fhir.nhs.uk/Id/nhs-number and DSTU2 the form its profiles fix."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from lxml import etree

from ..support import NHS_SYSTEM, Server, assert_outcome, flag_body
from .cpis_helpers import batch, careplan, clinician, outcomes, upload
from .test_fgm_dstu2 import NS, message, one, send, system_cert

JSON = "application/fhir+json"
GIRL = "9990000018"  # sandbox girl with an active indicator
CPP_CHILD = "9990000123"  # sandbox boy on a child protection plan
GP_ASID = "047192794544"
ACCEPTED = [NHS_SYSTEM, "http://fhir.nhs.uk/Id/nhs-number", "http://fhir.nhs.net/Id/nhs-number",
            "HTTPS://FHIR.NHS.UK/ID/NHS-NUMBER", "http://fhir.nhs.uk/id/nhs-number"]
OTHERS = ["https://fhir.nhs.uk/Id/nhs-numbers", "https://fhir.nhs.net/Id/nhs-number",
          "urn:oid:2.16.840.1.113883.2.1.4.1", "https://example.org/mrn"]


@pytest.mark.parametrize("value", [f"{s}|{GIRL}" for s in ACCEPTED] + [GIRL, f"|{GIRL}"])
def test_fgm_search_accepts_every_published_form_and_none(server: Server, client: httpx.Client, value: str) -> None:
    response = client.get(f"{server.fgm}/Flag", params={"patient:identifier": value}, headers=server.headers())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 1
    assert body["entry"][0]["resource"]["subject"]["identifier"] == {"system": NHS_SYSTEM, "value": GIRL}
    assert body["link"][0]["url"] == f"{server.fgm}/Flag?patient:identifier={NHS_SYSTEM}|{GIRL}"


@pytest.mark.parametrize("system", OTHERS)
def test_fgm_search_with_another_system_is_an_invalid_nhs_number(server: Server, client: httpx.Client,
                                                                 system: str) -> None:
    response = client.get(f"{server.fgm}/Flag", params={"patient:identifier": f"{system}|{GIRL}"},
                          headers=server.headers())
    assert_outcome(response, 400, "INVALID_SEARCH_DATA", "Invalid NHS number")


def _create(server: Server, client: httpx.Client, child: str, system: str | None) -> httpx.Response:
    body: dict[str, Any] = flag_body(child)
    body["subject"]["identifier"] = {"value": child, **({"system": system} if system is not None else {})}
    return client.post(f"{server.fgm}/Flag", content=json.dumps(body),
                       headers={**server.headers(), "Content-Type": JSON})


@pytest.mark.parametrize("system", [*ACCEPTED, None])
def test_fgm_create_accepts_every_published_form_and_none_and_emits_the_r4_one(
        server: Server, client: httpx.Client, system: str | None) -> None:
    child = server.add_patient()
    response = _create(server, client, child, system)
    assert response.status_code == 201, response.text
    assert response.json()["subject"]["identifier"] == {"system": NHS_SYSTEM, "value": child}
    assert [i.nhs_number for i in server.history(child)] == [child]


@pytest.mark.parametrize("system", OTHERS)
def test_fgm_create_with_another_system_is_an_invalid_nhs_number(server: Server, client: httpx.Client,
                                                                 system: str) -> None:
    child = server.add_patient()
    assert_outcome(_create(server, client, child, system), 400, "INVALID_VALUE", "Invalid NHS number")
    assert server.history(child) == []


@pytest.mark.parametrize("param", ["patient:identifier", "patient"])
@pytest.mark.parametrize("system", ["http://fhir.nhs.net/Id/nhs-number", "http://fhir.nhs.uk/Id/nhs-number", ""])
def test_cpis_search_accepts_the_same_forms(server: Server, client: httpx.Client, param: str, system: str) -> None:
    response = client.get(f"{server.cpis}/CareTeam", params={param: f"{system}|{CPP_CHILD}"},
                          headers=clinician(server, unscheduled="false"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 1
    assert body["entry"][0]["resource"]["subject"]["identifier"] == {"system": NHS_SYSTEM, "value": CPP_CHILD}


def test_cpis_search_refuses_another_system_as_the_fgm_search_does(server: Server, client: httpx.Client) -> None:
    response = client.get(f"{server.cpis}/CareTeam",
                          params={"patient": f"https://fhir.nhs.net/Id/nhs-number|{CPP_CHILD}"},
                          headers=clinician(server, unscheduled="false"))
    assert_outcome(response, 400, "INVALID_SEARCH_DATA", "Invalid NHS number")


@pytest.mark.parametrize("system", ["http://fhir.nhs.net/Id/nhs-number", None])
def test_cpis_upload_accepts_the_same_forms(server: Server, system: str | None) -> None:
    child = server.add_patient()
    plan = careplan(child)
    plan["subject"]["identifier"] = {"value": child, **({"system": system} if system else {})}
    assert outcomes(upload(server, batch(plan))) == [("201 Created", "CPR06")]
    other = careplan(server.add_patient())
    other["subject"]["identifier"]["system"] = "https://example.org/mrn"
    [(status, code)] = outcomes(upload(server, batch(other)))
    assert status.startswith("400") and code == "CPR07"


def _dstu2_create(server: Server, child: str, system: str | None) -> tuple[bytes, httpx.Response]:
    def change(root: etree._Element) -> None:
        identifier = one(root, "f:entry/f:resource/f:Flag/f:contained/f:Patient/f:identifier")
        element = one(identifier, "f:system")
        if system is None:
            identifier.remove(element)
        else:
            element.set("value", system)

    body = message("create", child, change=change)
    with server.client(cert=system_cert(server, GP_ASID)) as gp:
        return body, send(gp, server, "create", body)


@pytest.mark.parametrize("system", [NHS_SYSTEM, "http://fhir.nhs.uk/Id/nhs-number", "HTTP://FHIR.NHS.NET/Id/NHS-Number",
                                    None])
def test_dstu2_create_accepts_the_same_forms(server: Server, system: str | None) -> None:
    child = server.add_patient()
    _, response = _dstu2_create(server, child, system)
    assert response.status_code == 201, response.text
    assert [i.nhs_number for i in server.history(child)] == [child]


def test_dstu2_create_with_another_system_has_no_nhs_number(server: Server) -> None:
    child = server.add_patient()
    _, response = _dstu2_create(server, child, "https://example.org/mrn")
    assert response.status_code == 400
    assert one(etree.fromstring(response.content), "//f:OperationOutcome//f:details/f:coding/f:code").get(
        "value") == "INVALID_PARAMETER"
    assert server.history(child) == []


def test_dstu2_answers_with_the_system_its_profiles_fix(server: Server) -> None:
    with server.client(cert=system_cert(server, GP_ASID)) as gp:
        response = send(gp, server, "query", message("query", GIRL))
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    assert root.xpath("//f:Flag/f:contained/f:Patient/f:identifier/f:system/@value", namespaces=NS) == [
        "http://fhir.nhs.net/Id/nhs-number"]
