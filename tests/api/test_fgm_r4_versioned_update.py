"""Versioned update: PUT /Flag/{id} with If-Match (the CapabilityStatement's versioned-update), and the
ETag / meta.versionId every Flag answer carries."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from safeguarding.domain.fgm import IndicatorStatus

from ..support import Server, assert_outcome, flag_body, removal_body

JSON = "application/fhir+json"
MISMATCH = "If-Match does not name the Flag's current version (its ETag): read it again"


def _created(server: Server, client: httpx.Client) -> tuple[str, dict[str, Any], httpx.Response]:
    child = server.add_patient()
    response = client.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(child)),
                           headers={**server.headers(), "Content-Type": JSON})
    assert response.status_code == 201, response.text
    return child, response.json(), response


def _put(server: Server, client: httpx.Client, flag: dict[str, Any], *if_match: str) -> httpx.Response:
    headers = [*server.headers().items(), ("Content-Type", JSON), *(("If-Match", value) for value in if_match)]
    return client.put(f"{server.fgm}/Flag/{flag['id']}", content=json.dumps(removal_body(flag)), headers=headers)


def test_etag_and_version_id_agree_on_create_read_and_update(server: Server, client: httpx.Client) -> None:
    _, flag, created = _created(server, client)
    assert created.headers["etag"] == 'W/"1"' and flag["meta"]["versionId"] == "1"
    read = client.get(f"{server.fgm}/Flag/{flag['id']}", headers=server.headers())
    assert read.headers["etag"] == 'W/"1"' and read.json()["meta"]["versionId"] == "1"
    removed = _put(server, client, flag, read.headers["etag"])
    assert removed.status_code == 200, removed.text
    assert removed.headers["etag"] == 'W/"2"' and removed.json()["meta"]["versionId"] == "2"
    again = client.get(f"{server.fgm}/Flag/{flag['id']}", headers=server.headers())
    assert again.headers["etag"] == 'W/"2"' and again.json()["meta"]["versionId"] == "2"


@pytest.mark.parametrize("if_match", ['W/"1"', '"1"', "*", 'W/"1", W/"1"'])
def test_if_match_naming_the_current_version_removes(server: Server, client: httpx.Client, if_match: str) -> None:
    child, flag, _ = _created(server, client)
    response = _put(server, client, flag, if_match)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "entered-in-error"
    [removed] = server.history(child)
    assert removed.status is IndicatorStatus.ENTERED_IN_ERROR and removed.version == 2


@pytest.mark.parametrize("if_match", ['W/"2"', 'W/"0"', '"made-up"', 'W/"99999999999999999999"'])
def test_if_match_naming_another_version_is_412_and_changes_nothing(server: Server, client: httpx.Client,
                                                                     if_match: str) -> None:
    child, flag, _ = _created(server, client)
    rid = f"if-match-{uuid.uuid4()}"  # never the NHS number: request ids are logged
    headers = {**server.headers(**{"X-Request-ID": rid}), "Content-Type": JSON, "If-Match": if_match}
    response = client.put(f"{server.fgm}/Flag/{flag['id']}", content=json.dumps(removal_body(flag)), headers=headers)
    assert_outcome(response, 412, "PRECONDITION_FAILED", MISMATCH, issue_type="conflict")
    [unchanged] = server.history(child)
    assert unchanged.status is IndicatorStatus.ACTIVE and unchanged.version == 1 and unchanged.removal is None
    [record] = server.audit_for(rid)
    assert (record.event.interaction, record.event.status, record.event.outcome) == (
        "remove", 412, "PRECONDITION_FAILED")


def test_a_stale_etag_after_another_removal_is_412(server: Server, client: httpx.Client) -> None:
    child, flag, created = _created(server, client)
    assert _put(server, client, flag).status_code == 200  # someone else removes it (no If-Match: as before)
    response = _put(server, client, flag, created.headers["etag"])
    assert_outcome(response, 412, "PRECONDITION_FAILED", MISMATCH, issue_type="conflict")
    [removed] = server.history(child)
    assert removed.version == 2


@pytest.mark.parametrize("if_match", ["1", "W/1", "", 'W/"1", W/"2"'])
def test_a_malformed_if_match_is_the_invalid_head_parameter_row(server: Server, client: httpx.Client,
                                                                 if_match: str) -> None:
    child, flag, _ = _created(server, client)
    assert_outcome(_put(server, client, flag, if_match), 400, "PRECONDITION_FAILED",
                   "Missing or invalid head parameter")
    [unchanged] = server.history(child)
    assert unchanged.status is IndicatorStatus.ACTIVE and unchanged.version == 1
