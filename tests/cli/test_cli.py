"""The command line, run as a user runs it (a subprocess), against the session's sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import jwt

from safeguarding.domain.fgm import Actor, Indicator, IndicatorStatus, RemovalReason
from safeguarding.settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER

from ..support import NHS_SYSTEM, Server, flag_body, fresh_nhs_number, years_ago


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "safeguarding", *args], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_sandbox_describe_lists_the_documented_data_set(server: Server) -> None:
    facts = server.facts
    assert facts["base_url"] == server.base
    assert facts["service_asid"] == "990101234567"
    assert Path(facts["ca"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    systems = {s["asid"]: s for s in facts["systems"]}
    gp = systems["047192794544"]
    assert gp["kind"] == "clinical-system" and gp["ods"] == "B86022"
    assert "urn:nhs:names:services:clinicals-sync:FGMQuery_2_0" in gp["interactions"]
    assert Path(gp["cert"]).exists() and Path(gp["key"]).exists()
    patients = {p["key"]: p for p in facts["patients"]}
    for key in ("girl-with-indicator", "girl-without-indicator", "minor-gender-unknown", "minor-gender-other", "boy",
                "woman-18", "restricted-record", "turns-18-tomorrow"):
        assert patients[key]["nhs_number"].startswith("999") and patients[key]["purpose"], key
    assert patients["girl-with-indicator"]["has_indicator_at_creation"] is True
    assert patients["restricted-record"]["security"] == "R"


def test_dev_token_cli_prints_a_token_the_server_accepts(server: Server) -> None:
    token = run("dev-token", "--data-dir", str(server.data_dir), "--user-id", "555021935107", "--role-profile-id",
                "555021936108", "--org", "RR8", "--activities", "B0370,B0380", "--name", "Dr A Test").stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == SANDBOX_ISSUER and claims["aud"] == SANDBOX_AUDIENCE
    assert claims["nhsid_useruid"] == "555021935107" and claims["selected_roleid"] == "555021936108"
    assert claims["nhsid_nrbac_roles"] == [{
        "person_roleid": "555021936108", "org_code": "RR8", "role_code": "S8000:G8000:R8000",
        "role_name": '"Clinical":"Clinical Provision":"Nurse Access Role"', "activity_codes": ["B0370", "B0380"]}]
    assert claims["exp"] - claims["iat"] == 3600 and claims["name"] == "Dr A Test" and claims["jti"]
    with server.client() as client:
        response = client.get(f"{server.fgm}/Flag", params={"patient:identifier": f"{NHS_SYSTEM}|9990000018"},
                              headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["total"] == 1


def _pds_patient(number: str, birth: date, gender: str = "female", verified: bool = True) -> dict[str, Any]:
    code = "01" if verified else "02"
    return {
        "resourceType": "Patient",
        "id": number,
        "identifier": [{"system": NHS_SYSTEM, "value": number, "extension": [{
            "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
            "valueCodeableConcept": {"coding": [{
                "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatus", "code": code}]}}]}],
        "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "U"}]},
        "gender": gender,
        "birthDate": birth.isoformat(),
        "generalPractitioner": [{"type": "Organization", "identifier": {
            "system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "Y12345"}}],
    }


def test_load_patients_then_create_for_them(server: Server, tmp_path: Path) -> None:
    loaded, unverified = fresh_nhs_number(), fresh_nhs_number()
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": _pds_patient(loaded, years_ago(date.today(), 6))},
        {"resource": _pds_patient(unverified, years_ago(date.today(), 6), verified=False)},
    ]}
    path = tmp_path / "patients.json"
    path.write_text(json.dumps(bundle))
    assert json.loads(run("load", "patients", str(path), "--data-dir", str(server.data_dir)).stdout) == {"loaded": 2}
    with server.client() as client:
        headers = {**server.headers(), "Content-Type": "application/fhir+json"}
        assert client.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(loaded)), headers=headers
                           ).status_code == 201
        assert client.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(unverified)), headers=headers
                           ).status_code == 400


def test_load_patients_rejects_bad_data_without_echoing_it(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "Patient", "identifier": [{"system": NHS_SYSTEM, "value": "9990000017"}]}}]}))
    result = run("load", "patients", str(path), "--data-dir", str(server.data_dir), check=False)
    assert result.returncode == 1
    assert "entry 0: Patient needs exactly one valid NHS number identifier" in result.stderr
    assert "9990000017" not in result.stderr + result.stdout


def test_expire_removes_indicators_of_children_who_turned_18(server: Server) -> None:
    eighteen_today = server.add_patient(birth_date=years_ago(date.today(), 18))
    seventeen = server.add_patient(birth_date=years_ago(date.today(), 17, days=-1))  # 18 tomorrow
    ids = {}
    store = server.store()
    try:
        for number in (eighteen_today, seventeen):
            ids[number] = str(uuid.uuid4())
            with store.transaction() as tx:
                tx.insert_indicator(Indicator(ids[number], number, date(2025, 5, 1), IndicatorStatus.ACTIVE,
                                              "2025-05-01T00:00:00.000000Z", Actor(user_id="seed")))
    finally:
        store.close()
    result = json.loads(run("expire", "--data-dir", str(server.data_dir)).stdout)
    assert ids[eighteen_today] in result["ids"] and ids[seventeen] not in result["ids"]
    [expired] = server.history(eighteen_today)
    assert expired.status is IndicatorStatus.INACTIVE and expired.removal is not None
    assert expired.removal.reason is RemovalReason.TURNED_18
    assert [i.status for i in server.history(seventeen)] == [IndicatorStatus.ACTIVE]
    store = server.store()
    try:
        [event] = [r.event for r in store.audit_records() if r.event.resource_id == ids[eighteen_today]]
    finally:
        store.close()
    assert (event.api, event.interaction, event.status, event.nhs_number) == ("housekeeping", "expire", 200,
                                                                              eighteen_today)
    assert event.system_asid == "990101234567"
    # running it again finds nothing more for that child
    assert ids[eighteen_today] not in json.loads(run("expire", "--data-dir", str(server.data_dir)).stdout)["ids"]
    with server.client() as client:
        response = client.get(f"{server.fgm}/Flag/{ids[eighteen_today]}", headers=server.headers())
    assert response.status_code == 200 and response.json()["status"] == "inactive"
    assert "extension" not in response.json()  # the age-18 expiry has no R4 removal-reason code


def test_db_upgrade_on_a_new_data_dir(tmp_path: Path) -> None:
    result = run("db", "upgrade", "--data-dir", str(tmp_path / "new"))
    assert json.loads(result.stdout) == {"revision": "0005"}
    assert (tmp_path / "new" / "safeguarding.db").exists()


def test_serve_refuses_to_start_without_configuration(tmp_path: Path) -> None:
    result = run("serve", "--data-dir", str(tmp_path), check=False)
    assert result.returncode == 1
    assert "give --sandbox, or --config FILE with explicit configuration" in result.stderr


def test_the_controllable_clock_is_for_the_sandbox_only(tmp_path: Path) -> None:
    clock = tmp_path / "offset"
    clock.write_text("3600")
    config = tmp_path / "safeguarding.toml"
    config.write_text("")
    for args in (("--data-dir", str(tmp_path)), ("--config", str(config))):
        result = run("serve", *args, "--clock-file", str(clock), check=False)
        assert result.returncode == 1
        assert "--clock-file is for the sandbox and tests only: give --sandbox" in result.stderr
    clock.write_text("an hour")
    result = run("serve", "--sandbox", "--data-dir", str(tmp_path / "sbx"), "--clock-file", str(clock), check=False)
    assert result.returncode == 1
    assert "the clock file must hold a number of seconds" in result.stderr


def test_dev_certs_issues_a_client_certificate_from_the_sandbox_ca(server: Server, tmp_path: Path) -> None:
    from cryptography import x509

    out = json.loads(run("dev-certs", "--data-dir", str(server.data_dir), "--asid", "123456789012", "--ods", "A12345",
                         "--out", str(tmp_path)).stdout)
    cert = x509.load_pem_x509_certificate(Path(out["cert"]).read_bytes())
    ca = x509.load_pem_x509_certificate(server.ca.read_bytes())
    assert cert.issuer == ca.subject and cert.version == x509.Version.v3
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "123456789012"
    cert.verify_directly_issued_by(ca)
    assert httpx.get(f"{server.base}/_ping", verify=server.tls((out["cert"], out["key"]))).status_code == 200


def test_systems_registry_cli_and_sandbox_refresh_keeps_added_systems(tmp_path: Path) -> None:
    from safeguarding.sandbox.setup import ensure_sandbox

    data = tmp_path / "sbx"
    ensure_sandbox(data)
    run("systems", "add", "--data-dir", str(data), "--asid", "300000000123", "--ods", "A81001", "--interaction",
        "urn:nhs:names:services:clinicals-sync:FGMQuery_2_0")
    ensure_sandbox(data)  # what `serve --sandbox` does at every start
    listed = json.loads(run("systems", "list", "--data-dir", str(data), "--json").stdout)
    asids = sorted(s["asid"] for s in listed["systems"])
    assert asids == ["047192794544", "200000000117", "300000000101", "300000000123", "300000000202"]
    run("systems", "remove", "--data-dir", str(data), "--asid", "300000000123")
    listed = json.loads(run("systems", "list", "--data-dir", str(data), "--json").stdout)
    assert sorted(s["asid"] for s in listed["systems"]) == ["047192794544", "200000000117", "300000000101",
                                                           "300000000202"]
