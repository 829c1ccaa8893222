"""Operating an SMSP: its audit trail searched (SMSP-AUDIT-007), its configuration audited (SMSP-AUDIT-008),
its throughput reported (SMSP-PERF-002). A real SMSP process in front of a stand-in national service."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from safeguarding.audit.checkpoints import read_checkpoints

from .harness import CLIENT_ASID, GIRL, GIRL_WITHOUT, Smsp, Standin, make_smsp


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "safeguarding", "smsp", *args], capture_output=True, text=True,
                          timeout=60)


def _search(smsp: Smsp, *criteria: str) -> list[dict[str, Any]]:
    done = _cli("audit", "search", "--config", str(smsp.config), *criteria)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


@pytest.fixture()
def queried(standin_pki: dict[str, Path], standin: Callable[[str], Standin], smsps: list[Smsp],
            request: pytest.FixtureRequest) -> Smsp:
    """An SMSP that has answered four queries: two forwarded (the national answer is junk), one with an
    invalid NHS number and one from an unmapped user, both refused locally."""
    junk = standin("junk")
    smsp = make_smsp(standin_pki, junk.upstream, request.node.name)
    smsps.append(smsp)
    assert smsp.query(GIRL).status_code == 400
    assert smsp.query(GIRL_WITHOUT).status_code == 400
    assert smsp.query("9990000017").status_code == 400
    assert smsp.query(GIRL, local_id="55555").status_code == 401
    return smsp


def test_the_audit_trail_is_searchable(queried: Smsp) -> None:
    queries = [r for r in _search(queried) if r["interaction"] == "query"]
    assert [r["outcome"] for r in queries] == ["RESPONSE_MESSAGE_VALIDATION_ERROR"] * 2 + [
        "INPUT_MESSAGE_VALIDATION_ERROR", "AUTHOR_CREDENTIALS_ERROR"]
    assert [r["seq"] for r in queries] == sorted(r["seq"] for r in queries)

    by_patient = _search(queried, "--nhs-number", GIRL)
    assert [(r["nhs_number"], r["outcome"]) for r in by_patient] == [
        (GIRL, "RESPONSE_MESSAGE_VALIDATION_ERROR"), (GIRL, "AUTHOR_CREDENTIALS_ERROR")]
    by_user = _search(queried, "--user", "local:12456")
    assert [r["nhs_number"] for r in by_user] == [GIRL, GIRL_WITHOUT]
    assert [r["status"] for r in _search(queried, "--outcome", "INPUT_MESSAGE_VALIDATION_ERROR")] == [400]
    national_id = by_user[1]["resource_id"]
    assert [r["nhs_number"] for r in _search(queried, "--message-id", national_id)] == [GIRL_WITHOUT]
    both = _search(queried, "--user", "local:12456", "--nhs-number", GIRL_WITHOUT)
    assert [r["resource_id"] for r in both] == [national_id]

    today = datetime.now(timezone.utc).date()
    assert len(_search(queried, "--from", str(today), "--to", str(today))) == 5  # with the start-up record
    assert _search(queried, "--from", str(today + timedelta(days=1))) == []
    assert _search(queried, "--to", str(today - timedelta(days=1))) == []
    first = queries[0]["recorded_at"]
    assert [r["recorded_at"] for r in _search(queried, "--to", first) if r["interaction"] == "query"] == []
    assert [r["recorded_at"] for r in _search(queried, "--from", first)][0] == first

    refused = _cli("audit", "search", "--config", str(queried.config), "--from", "last tuesday")
    assert refused.returncode == 2 and "not an ISO date or instant" in refused.stderr


def test_a_configuration_change_is_audited_at_start_up(queried: Smsp) -> None:
    [loaded] = _search(queried, "--outcome", "CONFIGURATION_LOADED")
    assert loaded["interaction"] == "configuration" and re.fullmatch(r"[0-9a-f]{64}", loaded["resource_id"])
    queried.stop()
    queried.start()  # the same configuration: the same fingerprint
    users = queried.data_dir / "users.json"
    users.write_text(users.read_text().replace("555021936108", "555021936109"))
    queried.stop()
    queried.start()
    hashes = [r["resource_id"] for r in _search(queried, "--outcome", "CONFIGURATION_LOADED")]
    assert hashes[:2] == [loaded["resource_id"]] * 2 and len(hashes) == 3 and hashes[2] != hashes[0]


def test_daily_and_peak_hour_throughput(queried: Smsp) -> None:
    metrics = httpx.get(f"https://127.0.0.1:{queried.port}/_metrics", verify=queried.tls()).text
    totals = re.findall(r'^safeguarding_smsp_queries_day_total\{day="([0-9-]{10})"\} ([0-9.]+)$', metrics, re.M)
    peaks = re.findall(r'^safeguarding_smsp_queries_peak_hour\{day="([0-9-]{10})",hour="([0-9]{2})"\} ([0-9.]+)$',
                       metrics, re.M)
    assert sum(float(total) for _, total in totals) == 4
    assert peaks and all(2 <= float(count) <= 4 for _, _, count in peaks)  # four queries within two hours at most
    assert GIRL not in metrics

    done = _cli("throughput", "--config", str(queried.config))
    assert done.returncode == 0, done.stderr
    days = json.loads(done.stdout)
    assert sum(day["total"] for day in days) == 4
    for day in days:
        assert set(day) == {"day", "total", "peak_hour", "peak_hour_total"}
        assert re.fullmatch(r"[0-9]{2}", day["peak_hour"]) and day["peak_hour_total"] <= day["total"]
    assert [(d["day"], d["total"]) for d in days] == [(day, int(float(total))) for day, total in totals]


def test_dev_certs_make_the_smsps_local_ca_server_and_client_certificates(
        standin_pki: dict[str, Path], standin: Callable[[str], Standin], smsps: list[Smsp], tmp_path: Path) -> None:
    """What docs/smsp.md tells a first-time operator to run, used as it says: the SMSP serves with them
    and a client with its certificate gets through to the national service."""
    done = _cli("dev-certs", "--out", str(tmp_path / "local"), "--client", CLIENT_ASID, "--ods", "A81001")
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    [client] = made["clients"]
    assert client["asid"] == CLIENT_ASID and re.fullmatch(r"[0-9a-f]{64}", client["cert_sha256"])
    again = json.loads(_cli("dev-certs", "--out", str(tmp_path / "local")).stdout)
    assert again["client_ca"] == made["client_ca"] and again["clients"] == []  # the CA is kept
    junk = standin("junk")
    smsp = make_smsp(standin_pki | {"local_ca": Path(made["client_ca"]), "smsp_cert": Path(made["cert"]),
                                    "smsp_key": Path(made["key"]), "client_cert": Path(client["cert"]),
                                    "client_key": Path(client["key"])}, junk.upstream, "dev-certs")
    smsps.append(smsp)
    response = smsp.query(GIRL)
    assert response.status_code == 400 and b"RESPONSE_MESSAGE_VALIDATION_ERROR" in response.content
    assert junk.requests() == 1


def test_the_smsps_answers_to_its_own_events_are_configuration(
        standin_pki: dict[str, Path], standin: Callable[[str], Standin], smsps: list[Smsp]) -> None:
    """SMSP-CONF-001: [vocabulary] names the vocabulary's version and may remap the SMSP's events to its
    error rows, never to an answer about the patient."""
    junk = standin("junk")
    smsp = make_smsp(standin_pki, junk.upstream, "vocabulary", extra=[
        "[vocabulary]", 'version = "spine-response-code-2-0"',
        'national_reply_unusable = "COULD_NOT_CONNECT_TO_SPINE"'])
    smsps.append(smsp)
    response = smsp.query(GIRL)
    assert response.status_code == 500 and b"COULD_NOT_CONNECT_TO_SPINE" in response.content
    base = smsp.config.read_text().split("[vocabulary]")[0]
    for table, refusal in (
            ('national_unreachable = "NO_RECORD_FOUND"', "national_unreachable may not be answered 'NO_RECORD_FOUND'"),
            ('version = "spine-response-code-1-0"', "vocabulary version 'spine-response-code-1-0' is not supported"),
            ('throttling = "ASID_CHECK_FAILED"', "vocabulary: unknown event 'throttling'")):
        smsp.config.write_text(f"{base}[vocabulary]\n{table}\n")
        refused = _cli("serve", "--config", str(smsp.config))
        assert refused.returncode == 1 and refusal in refused.stderr, refused.stderr


def test_the_requirement_table_names_tests_that_exist() -> None:
    """docs/smsp.md shows each SMSP requirement by a test: each one named must exist."""
    docs = (Path(__file__).parents[2] / "docs" / "smsp.md").read_text()
    modules = {"smsp": "test_smsp.py", "hostile": "test_hostile_national.py", "ops": "test_operations.py"}
    named = re.findall(r"`(smsp|hostile|ops)::(test_[a-z0-9_]+)`", docs)
    assert len(named) >= 25
    for module, test in named:
        assert f"\ndef {test}(" in (Path(__file__).parent / modules[module]).read_text(), (module, test)


def test_the_chain_head_is_checkpointed_outside_the_database_at_shutdown(queried: Smsp) -> None:
    queried.stop()
    try:
        path = queried.data_dir / "audit-checkpoints.log"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        checkpoints = read_checkpoints(path, (queried.data_dir / "audit.key").read_bytes())
        records = queried.audit()
        assert checkpoints and checkpoints[-1].seq == records[-1].seq  # the last one written at shutdown
    finally:
        queried.start()


def test_a_client_registry_change_while_running_is_audited_at_once(queried: Smsp) -> None:
    [started] = _search(queried, "--outcome", "CONFIGURATION_LOADED")
    clients = queried.data_dir / "clients.json"
    clients.write_text(json.dumps(json.loads(clients.read_text()), indent=2))  # same clients, another file
    assert queried.query(GIRL).status_code == 400  # the next request re-reads it (the national answer is junk)
    for _ in range(50):
        loaded = _search(queried, "--outcome", "CONFIGURATION_LOADED")
        if len(loaded) == 2:
            break
        time.sleep(0.1)
    assert [r["resource_id"] == started["resource_id"] for r in loaded] == [True, False]
    assert loaded[1]["seq"] > started["seq"]
