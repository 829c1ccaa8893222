"""Every sandbox scenario (sandbox/catalogue.py), sent over HTTPS as a supplier's system would send it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date

import pytest

from safeguarding.app import build_services
from safeguarding.demographics import LocalDemographics
from safeguarding.sandbox import scenarios as sim
from safeguarding.sandbox.catalogue import SCENARIOS, Scenario
from safeguarding.settings import sandbox_settings

from ..support import ERROR_SYSTEM, Server, fhir
from .conftest import SLOW_SECONDS
from .helpers import details_code, send, variables


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_each_scenario_gives_its_answer(supplier_server: Server, scenario: Scenario) -> None:
    values = variables(supplier_server)
    started = time.monotonic()
    response = send(supplier_server, scenario, values)
    elapsed = time.monotonic() - started
    assert response.status_code == scenario.status, response.text
    assert details_code(response) == scenario.code, response.text
    if scenario.api != "fgm-dstu2":
        assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
        body = response.json()
        fhir(response)  # a valid FHIR R4 resource
        if body["resourceType"] == "OperationOutcome":
            [issue] = body["issue"]
            assert issue["diagnostics"] == scenario.diagnostics
            assert issue["details"]["coding"][0]["system"] == ERROR_SYSTEM
    else:
        assert response.headers["content-type"].startswith("application/xml+fhir")
    assert ("retry-after" in response.headers) is scenario.retry_after
    if scenario.retry_after:
        assert response.headers["retry-after"] == str(sim.RETRY_AFTER_SECONDS)
    if scenario.slow:
        assert elapsed >= SLOW_SECONDS
    assert response.headers["x-request-id"]


def test_turns_18_tomorrow_and_plan_ending_today_answer_with_today_in_them(supplier_server: Server) -> None:
    values = variables(supplier_server)
    today = date.today().isoformat()
    [flag_search] = [s for s in SCENARIOS if s.id == "r4-turns-18-tomorrow"]
    bundle = send(supplier_server, flag_search, values).json()
    assert bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["subject"]["identifier"]["value"] == "9990000085"
    [plan_search] = [s for s in SCENARIOS if s.id == "cpis-plan-ending-today"]
    bundle = send(supplier_server, plan_search, values).json()
    assert bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["period"]["end"] == today
    [ended] = [s for s in SCENARIOS if s.id == "cpis-plan-ended"]
    assert send(supplier_server, ended, values).json()["total"] == 0


def test_a_client_that_gives_up_on_the_slow_answer_is_audited_as_such(supplier_server: Server) -> None:
    import httpx

    [slow] = [s for s in SCENARIOS if s.id == "r4-slow-answer-header"]
    values = variables(supplier_server)
    with pytest.raises(httpx.ReadTimeout):
        send(supplier_server, slow, values, headers={"X-Request-ID": "gives-up-1"}, timeout=0.4)
    deadline = time.monotonic() + 10
    while not (records := supplier_server.audit_for("gives-up-1")) and time.monotonic() < deadline:
        time.sleep(0.2)
    [record] = records
    assert record.event.status == 200
    assert json.loads(record.event.wire or "{}") == {"ids": ["X-Request-ID"], "scenario": "slow-answer",
                                                      "abandoned": True}


def test_describe_lists_every_scenario_with_its_trigger(supplier_server: Server) -> None:
    facts = json.loads(subprocess.check_output([sys.executable, "-m", "safeguarding", "sandbox", "describe",
                                                "--data-dir", str(supplier_server.data_dir), "--json"]))
    listed = {s["id"]: s for s in facts["scenarios"]}
    assert set(listed) == {s.id for s in SCENARIOS}
    for scenario in SCENARIOS:
        entry = listed[scenario.id]
        assert entry["status"] == scenario.status and entry["code"] == scenario.code
        assert entry["triggers"] and entry["trigger"]
        assert entry.get("nhs_number") == scenario.nhs_number and entry.get("header") == scenario.header
    assert listed["r4-store-unavailable"]["nhs_number"] == sim.STORE_UNAVAILABLE
    assert listed["r4-slow-answer-header"]["header"] == "X-Sandbox-Scenario: slow-answer"


def test_scenarios_are_never_installed_outside_the_sandbox(supplier_server: Server) -> None:
    settings = sandbox_settings(supplier_server.data_dir)
    production = type(settings)(**{**settings.__dict__, "sandbox": False})
    app = object()
    assert sim.with_scenarios(app, False) is app  # type: ignore[arg-type]
    assert isinstance(sim.with_scenarios(app, True), sim.ScenarioMiddleware)  # type: ignore[arg-type]
    services = build_services(production)
    try:
        assert isinstance(services.fgm._demographics, LocalDemographics)
        assert services.fgm._demographics.lookup(sim.STORE_UNAVAILABLE) is None  # just a number nobody has
    finally:
        services.store.close()
    services = build_services(settings)
    try:
        assert isinstance(services.fgm._demographics, sim.ScenarioDemographics)
        with pytest.raises(sim.StoreUnavailable):
            services.fgm._demographics.lookup(sim.STORE_UNAVAILABLE)
    finally:
        services.store.close()


def test_the_sandbox_docs_list_every_scenario() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "sandbox.md").read_text()
    for scenario in SCENARIOS:
        assert f"| `{scenario.id}` | {scenario.api} | {scenario.trigger} | {scenario.triggers} |" in text, scenario.id


def test_the_slow_answer_holds_no_oversized_body(supplier_server: Server) -> None:
    """The middleware reads a body to hold it: past the service's limit it stops and the service refuses it."""
    values = variables(supplier_server)
    with supplier_server.client() as http:
        response = http.post(f"{supplier_server.fgm}/Flag", content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                             headers={"Authorization": f"Bearer {values['token_fgm']}",
                                      "Content-Type": "application/fhir+json", "X-Sandbox-Scenario": "slow-answer"})
    assert response.status_code == 413
    assert response.json()["issue"][0]["details"]["coding"][0]["code"] == "REQUEST_TOO_LARGE"


# The error tables of the NHS guides, row for row: FGM-IS FHIR R4 and CP-IS FHIR R4 (Build > Error handling:
# HTTP, code, diagnostics) and the FGM-IS DSTU2 table (FGM-IS Local System Integration Requirements
# Specification v2.2, Appendix B: HTTP and code).
R4_ROWS = [
    ("fgm-r4", 400, "INVALID_SEARCH_DATA", "Invalid NHS number"),
    ("fgm-r4", 400, "PRECONDITION_FAILED", "Missing or invalid head parameter"),
    ("fgm-r4", 403, "ACCESS_DENIED", "The sender or receiver's ASID is not authorised for this interaction"),
    ("fgm-r4", 400, "INVALID_VALUE", "Invalid NHS number"),
    ("fgm-r4", 400, "UNSUPPORTED_VALUE", "Code must be 902961000000107"),
    ("fgm-r4", 400, "UNSUPPORTED_VALUE", "Status must be active on this interaction"),
    ("fgm-r4", 400, "VALIDATION_ERROR", "Patient is over 18"),
    ("fgm-r4", 400, "VALIDATION_ERROR", "Patient gender must be female, unknown or indeterminate"),
    ("fgm-r4", 400, "VALIDATION_ERROR", "Flag value was already set"),
    ("fgm-r4", 400, "VALIDATION_ERROR", "Removal reason not allowed on this interaction"),
    ("fgm-r4", 400, "RESOURCE_NOT_FOUND", "Resource not found"),
    ("fgm-r4", 400, "INVALID_VALUE", "ID specified in the URL does not match the ID specified in the resource"),
    ("fgm-r4", 400, "VALIDATION_ERROR", "Removal reason must be supplied"),
    ("cpis-r4", 400, "INVALID_SEARCH_DATA", "Invalid NHS number"),
    ("cpis-r4", 400, "PRECONDITION_FAILED", "Missing or invalid head parameter"),
    ("cpis-r4", 403, "ACCESS_DENIED", "Access has been denied to process this request"),
]
DSTU2_ROWS = [(404, "NO_RECORD_FOUND"), (400, "INVALID_NHS_NUMBER"), (400, "PATIENT_OVER_18"),
              (400, "INVALID_PARAMETER"), (422, "FLAG_ALREADY_SET"), (400, "MESSAGE_NOT_WELL_FORMED"),
              (403, "ASID_CHECK_FAILED")]


def test_every_error_row_of_the_nhs_guides_has_a_scenario() -> None:
    r4 = {(s.api, s.status, s.code, s.diagnostics) for s in SCENARIOS}
    assert [row for row in R4_ROWS if row not in r4] == []
    dstu2 = {(s.status, s.code) for s in SCENARIOS if s.api == "fgm-dstu2"}
    assert [row for row in DSTU2_ROWS if row not in dstu2] == []
