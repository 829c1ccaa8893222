from __future__ import annotations

import httpx

from ..support import Server, fhir


def test_capability_statement_tells_what_is_served(server: Server, client: httpx.Client) -> None:
    response = client.get(f"{server.fgm}/metadata")
    assert response.status_code == 200
    statement = fhir(response)
    assert statement.fhirVersion == "4.0.1" and statement.kind == "instance"
    assert statement.format == ["application/fhir+json", "application/fhir+xml"]
    [rest] = statement.rest
    assert rest.mode == "server"
    assert [r.type for r in rest.resource] == ["Flag"]
    [flag] = rest.resource
    assert sorted(i.code for i in flag.interaction) == ["create", "read", "search-type", "update", "vread"]
    assert [p.name for p in flag.searchParam] == ["patient"]
    assert statement.implementation.url == server.fgm


def test_ping_and_status(server: Server, client: httpx.Client) -> None:
    ping = client.get(f"{server.base}/_ping")
    assert ping.status_code == 200 and ping.json()["status"] == "pass"
    status = client.get(f"{server.base}/_status")
    assert status.status_code == 200 and status.json()["checks"] == {"store": "pass"}
