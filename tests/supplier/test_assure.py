"""``safeguarding assure``: a scripted well-behaved client and a careless one go through the sandbox's
scenarios over HTTPS; the report tells them apart requirement by requirement."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from safeguarding.sandbox.catalogue import SCENARIOS, Request, Scenario, message

from ..support import Server
from .conftest import SLOW_SECONDS
from .helpers import send, variables

GOOD_APP, CARELESS_APP = "well-behaved-gp-app", "careless-ed-app"
GOOD_SYSTEM, CARELESS_SYSTEM = "047192794544", "200000000117"


def scenario(scenario_id: str) -> Scenario:
    [found] = [s for s in SCENARIOS if s.id == scenario_id]
    return found


def dstu2(kind: str, number: str, system: str, *, soap_action: bool = True) -> Scenario:
    from safeguarding.sandbox.catalogue import DSTU2_ACTIONS

    body = message(kind).replace("{{nhs_number}}", number).replace("{{source_asid}}", system) \
        .replace("{{delete_reason}}", "0")
    headers = {"Content-Type": "text/xml", "X-Request-ID": "{{$guid}}"}
    if soap_action:
        headers["SOAPAction"] = f'"{DSTU2_ACTIONS[kind]}"'
    return Scenario(f"adhoc-{kind}", "fgm-dstu2", "", "", 0, "", Request("POST", f"/fhir/fgm/{kind}", headers, body,
                                                                         cert=system))


def r4(method: str, path: str, token: str, body: str | None = None, **headers: str) -> Scenario:
    sent = {"Authorization": f"Bearer {{{{{token}}}}}", "X-Request-ID": "{{$guid}}", **headers}
    if body is not None:
        sent["Content-Type"] = "application/fhir+json"
    return Scenario("adhoc", "fgm-r4", "", "", 0, "", Request(method, path, sent, body))


def well_behaved(server: Server) -> None:
    values = variables(server, client_id=GOOD_APP)
    send(server, scenario("r4-turns-18-tomorrow"), values)  # found
    send(server, scenario("r4-search-no-record"), values)  # empty searchset
    send(server, scenario("r4-search-access-denied"), values)  # 403, reported, not sent again
    # create and remove, for a girl of its own
    girl = server.add_patient(age=9)
    flag = '{"resourceType":"Flag","status":"active","code":{"coding":[{"system":"http://snomed.info/sct","code":' \
        '"902961000000107"}]},"subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"' + \
        girl + '"}},"period":{"start":"{{assessment_date}}"}}'
    created = send(server, r4("POST", "/fgm/FHIR/R4/Flag", "token_fgm", flag), values)
    assert created.status_code == 201, created.text
    removal = dict(created.json())
    removal.pop("meta", None)
    removal["status"] = "entered-in-error"
    removal["extension"] = [{"url": "https://fhir.nhs.uk/England/StructureDefinition/Extension-England-FlagRemovalReason",
                             "valueCodeableConcept": {"coding": [{
                                 "system": "https://fhir.nhs.uk/England/CodeSystem/England-FGMRemovalReason",
                                 "code": "0"}]}}]
    removed = send(server, r4("PUT", f"/fgm/FHIR/R4/Flag/{removal['id']}", "token_fgm", json.dumps(removal)), values)
    assert removed.status_code == 200, removed.text
    # 503: waits Retry-After, tries once more, gives up
    unavailable = send(server, scenario("r4-store-unavailable"), values)
    assert unavailable.status_code == 503
    time.sleep(float(unavailable.headers["retry-after"]) + 0.5)
    assert send(server, scenario("r4-store-unavailable"), values).status_code == 503
    # the slow answer: gives up after its timeout, waits, tries once more and waits for the answer
    with pytest.raises(httpx.ReadTimeout):
        send(server, scenario("r4-slow-answer-header"), values, timeout=0.5)
    time.sleep(1.2)
    assert send(server, scenario("r4-slow-answer-header"), values).status_code == 200
    # CP-IS, from an emergency department: unscheduled care, said every time
    send(server, scenario("cpis-plan-ending-today"), values,
         headers={"IsUnscheduledAccessEvent": "true"})
    send(server, scenario("cpis-plan-ended"), values, headers={"IsUnscheduledAccessEvent": "true"})
    # DSTU2, as the GP system
    assert send(server, dstu2("query", "9990000018", GOOD_SYSTEM), values).status_code == 200
    assert send(server, dstu2("query", "9990000026", GOOD_SYSTEM), values).status_code == 404
    girl2 = server.add_patient(age=12)
    assert send(server, dstu2("create", girl2, GOOD_SYSTEM), values).status_code == 201
    assert send(server, dstu2("delete", girl2, GOOD_SYSTEM), values).status_code == 200
    assert send(server, dstu2("query", "9990000220", GOOD_SYSTEM), values).status_code == 500
    assert send(server, dstu2("query", "9990000239", GOOD_SYSTEM), values).status_code == 404  # waited


def careless(server: Server) -> None:
    values = variables(server, client_id=CARELESS_APP)
    no_ids = ("X-Request-ID",)
    send(server, scenario("r4-search-unverified-nhs-number"), values, drop=no_ids)  # an unverified number
    send(server, r4("GET", "/fgm/FHIR/R4/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9990000069",
                    "token_fgm"), values, drop=no_ids)  # an adult
    for _ in range(3):  # a refusal sent again and again
        send(server, scenario("r4-search-access-denied"), values, drop=no_ids)
    for _ in range(5):  # ignores 503 and its Retry-After
        send(server, scenario("r4-demographics-unavailable"), values, drop=no_ids)
    for _ in range(4):  # gives up on the slow answer and asks again at once, in a loop
        with pytest.raises(httpx.ReadTimeout):
            send(server, scenario("r4-slow-answer-patient"), values, drop=no_ids, timeout=0.3)
    send(server, scenario("cpis-plan-ending-today"), values, drop=("IsUnscheduledAccessEvent", *no_ids))
    # DSTU2 as a system registered for queries only: no SOAPAction, and a create it may not send
    send(server, dstu2("query", "9990000093", CARELESS_SYSTEM, soap_action=False), values, drop=no_ids)
    send(server, dstu2("create", "9990000026", CARELESS_SYSTEM), values, drop=no_ids)


def assure(server: Server, tmp_path: Path, *selector: str) -> tuple[dict[str, Any], str]:
    out, as_json = tmp_path / f"{uuid.uuid4()}.html", tmp_path / f"{uuid.uuid4()}.json"
    done = subprocess.run([sys.executable, "-m", "safeguarding", "assure", *selector, "--out", str(out), "--json",
                           str(as_json), "--data-dir", str(server.data_dir)], capture_output=True, text=True,
                          env=server.env, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(as_json.read_text())
    assert f"{report['requests']} requests" in done.stdout
    return report, out.read_text()


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {item["id"]: item["status"] for item in report["requirements"]}


def test_the_report_tells_a_well_behaved_client_from_a_careless_one(supplier_server: Server, tmp_path: Path) -> None:
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    well_behaved(supplier_server)
    careless(supplier_server)
    time.sleep(SLOW_SECONDS + 1)  # the abandoned slow requests are answered (and audited) after the delay

    good_app, good_html = assure(supplier_server, tmp_path, "--client-id", GOOD_APP, "--since", started)
    bad_app, bad_html = assure(supplier_server, tmp_path, "--client-id", CARELESS_APP, "--since", started)
    good_system, _ = assure(supplier_server, tmp_path, "--system", GOOD_SYSTEM, "--since", started)
    bad_system, _ = assure(supplier_server, tmp_path, "--system", CARELESS_SYSTEM, "--since", started)

    assert statuses(good_app) == {
        "SG-TRACE-01": "evidenced", "FGMISQ003": "evidenced", "FGMISQ004": "evidenced", "FGMISQR005": "evidenced",
        "FGMISQR006": "evidenced", "SG-RETRY-01": "evidenced", "SG-TIMEOUT-01": "evidenced",
        "SG-DSTU2-01": "not applicable", "FGMISQ008": "not applicable", "SG-CPIS-01": "evidenced",
        "SG-FGM-01": "evidenced", "MSCA-FGMRISQ-01": "not observable", "FGMISQR001": "not observable",
        "FGMISQR009": "not observable", "FGMISQ0011": "not observable", "MSCA-AUD-02": "not observable",
    }
    assert statuses(bad_app) == {
        # (its search for an adult was answered with an empty searchset: it did meet 'no record')
        "SG-TRACE-01": "missing", "FGMISQ003": "missing", "FGMISQ004": "missing", "FGMISQR005": "evidenced",
        "FGMISQR006": "missing", "SG-RETRY-01": "missing", "SG-TIMEOUT-01": "missing",
        "SG-DSTU2-01": "not applicable", "FGMISQ008": "not applicable", "SG-CPIS-01": "missing",
        "SG-FGM-01": "missing", "MSCA-FGMRISQ-01": "not observable", "FGMISQR001": "not observable",
        "FGMISQR009": "not observable", "FGMISQ0011": "not observable", "MSCA-AUD-02": "not observable",
    }
    good, bad = statuses(good_system), statuses(bad_system)
    for requirement in ("SG-TRACE-01", "SG-DSTU2-01", "FGMISQ008", "FGMISQ003"):
        assert (good[requirement], bad[requirement]) == ("evidenced", "missing"), requirement
    assert good["SG-FGM-01"] == "evidenced" and good["SG-RETRY-01"] == "evidenced"
    assert good["SG-CPIS-01"] == bad["SG-CPIS-01"] == "not applicable"

    # the well-behaved app serves an emergency department: unscheduled care, said every time
    in_ed, _ = assure(supplier_server, tmp_path, "--client-id", GOOD_APP, "--since", started,
                      "--care-setting", "unscheduled")
    as_gp, _ = assure(supplier_server, tmp_path, "--client-id", GOOD_APP, "--since", started,
                      "--care-setting", "scheduled")
    assert (statuses(in_ed)["SG-CPIS-01"], statuses(as_gp)["SG-CPIS-01"]) == ("evidenced", "missing")
    [gp_finding] = [item for item in as_gp["requirements"] if item["id"] == "SG-CPIS-01"]
    assert gp_finding["details"] == ["2 searches said true from a scheduled care setting"]

    bad_items = {item["id"]: item for item in bad_app["requirements"]}
    assert "sooner than 2 s" in " ".join(bad_items["SG-RETRY-01"]["details"])
    assert "attempts within 10 s" in " ".join(bad_items["SG-TIMEOUT-01"]["details"])
    assert bad_items["FGMISQ003"]["source"]["document"].startswith("FGM-IS Local System Integration Requirements")
    assert bad_items["FGMISQ003"]["text"] == "The FGM IS Query Interaction MUST contain a verified NHS number."
    assert "r4-store-unavailable" in good_app["scenarios_exercised"]
    assert "r4-demographics-unavailable" in bad_app["scenarios_exercised"]
    assert "r4-create-over-18" not in bad_app["scenarios_exercised"]  # it searched for her: not the create scenario
    # people read the HTML: every requirement with its status, offline (no scripts, no remote assets)
    for item in bad_app["requirements"]:
        assert f'id="{item["id"]}"' in bad_html
    assert '<span class="tag missing">missing</span>' in bad_html
    assert '<span class="tag evidenced">evidenced</span>' in good_html
    assert "<script" not in good_html and "src=" not in good_html and "@import" not in good_html
    # no patient data in the report
    for number in ("9990000093", "9990000069", "9990000018"):
        assert number not in bad_html and number not in json.dumps(bad_app)


def test_strict_fails_a_careless_run_only(supplier_server: Server, tmp_path: Path) -> None:
    careless(supplier_server)
    time.sleep(SLOW_SECONDS + 1)
    done = subprocess.run([sys.executable, "-m", "safeguarding", "assure", "--client-id", CARELESS_APP, "--strict",
                           "--out", str(tmp_path / "r.json"), "--data-dir", str(supplier_server.data_dir)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["missing"] >= 8
    quiet = subprocess.run([sys.executable, "-m", "safeguarding", "assure", "--client-id", "nobody-at-all", "--strict",
                            "--out", str(tmp_path / "none.json"), "--data-dir", str(supplier_server.data_dir)],
                           capture_output=True, text=True, check=False)
    assert json.loads((tmp_path / "none.json").read_text())["requests"] == 0
    assert quiet.returncode == 0  # nothing sent: every requirement is not applicable, none missing


def test_assure_needs_one_client(supplier_server: Server, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "safeguarding", "assure", "--out", str(tmp_path / "r.html"),
                           "--data-dir", str(supplier_server.data_dir)], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "give --system ASID or --client-id ID" in done.stderr
