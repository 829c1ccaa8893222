"""``safeguarding load cpis``: CP-IS plans from CSV, run as an operator runs it, against the session's sandbox.
And the CP-IS part of ``sandbox describe``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from safeguarding.domain.patients import SecurityLabel

from ..support import NHS_SYSTEM, Server

HEADER = "nhs_number,plan_type,status,start_date,end_date,authority_name,office_phone,emergency_phone"
SBC = "SBC01"


def run(server: Server, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "safeguarding", *args, "--data-dir", str(server.data_dir)],
                            capture_output=True, text=True, env=server.env)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def load(server: Server, path: Path, authority: str = SBC, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(server, "load", "cpis", str(path), "--authority", authority, check=check)


def day(n: int) -> str:
    return (date.today() + timedelta(days=n)).isoformat()


def plans(server: Server, numbers: list[str]) -> dict[str, Any]:
    return server.stored(lambda store: {n: sorted(store.read_plans(n), key=lambda p: p.id) for n in numbers})


def shared(server: Server, nhs: str) -> list[dict[str, Any]]:
    token = server.token(("B0170",), user_id="555021943105", role_profile_id="555021944106", org_code="B86022")
    with server.client() as client:
        response = client.get(f"{server.cpis}/CareTeam", params={"patient:identifier": f"{NHS_SYSTEM}|{nhs}"},
                              headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return [e["resource"] for e in response.json().get("entry", [])]


def test_loading_a_csv_twice_gives_the_same_state(server: Server, tmp_path: Path) -> None:
    cpp, lac, mother, ended = (server.add_patient() for _ in range(4))
    restricted = server.add_patient(security=SecurityLabel.RESTRICTED)
    rows = [
        f"{cpp[:3]} {cpp[3:6]} {cpp[6:]},CPP,active,{day(-20)},,Sandbox City Council,01134960001,07700900001",
        f"{lac},lac,active,{day(-200)},,Sandbox City Council,,07700900001",
        f"{mother},818901000000100,active,{day(-5)},{day(100)},Sandbox City Council,01134960001,",
        f"{ended},CPP,completed,{day(-300)},{day(-1)},Sandbox City Council,01134960001,",
        f"{restricted},CPP,active,{day(-20)},,Sandbox City Council,01134960001,",
        f"9990000115,CPP,active,{day(-20)},,Sandbox City Council,01134960001,",
        f"{cpp},XYZ,active,{day(-20)},,Sandbox City Council,01134960001,",
        f"{cpp},LAC,active,next week,,Sandbox City Council,01134960001,",
        f"{cpp},LAC,active,{day(-3)},,Sandbox City Council,phone me,",
        f"{cpp},LAC,active,{day(-3)}",
        "",
    ]
    path = tmp_path / "plans.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    first = load(server, path)
    summary = json.loads(first.stdout)
    assert {k: v for k, v in summary.items() if k != "failures"} == {
        "authority": SBC, "records": 10, "created": 4, "updated": 0, "unchanged": 0, "withdrawn": 0, "failed": 6,
        "file_code": "CPF03", "file_display": "Partial File Upload"}
    assert [(f["row"], f["code"]) for f in summary["failures"]] == [
        (6, "CPR02"), (7, "CPR01"), (8, "CPR07"), (9, "CPR07"), (10, "CPR07"), (11, "CPR07")]
    assert [f["reason"] for f in summary["failures"][2:]] == [
        "plan_type must be CPP, LAC or UCP (or its SNOMED code)", "start_date and end_date must be dates (YYYY-MM-DD)",
        "phone numbers must be digits with an optional leading +", "wrong number of columns"]
    assert "Loading CP-IS plans" in first.stderr
    numbers = [cpp, lac, mother, ended, restricted]
    for number in numbers + ["9990000115"]:
        assert number not in first.stdout + first.stderr  # rows are named by number, never by content
    state = plans(server, numbers)

    second = json.loads(load(server, path).stdout)
    assert (second["created"], second["unchanged"], second["failed"]) == (0, 4, 6)
    assert plans(server, numbers) == state  # the same plans, versions and all
    assert [t["category"][0]["coding"][0]["code"] for t in shared(server, cpp)] == ["342191000000101"]
    assert shared(server, ended) == []
    [unborn] = shared(server, mother)
    assert unborn["period"] == {"start": day(-5), "end": day(100)}
    assert state[restricted] == []

    records = server.stored(lambda store: [r.event for r in store.audit_records() if r.event.api == "cpis-csv"])
    assert len(records) >= 2 and all(r.system_asid == "300000000101" and r.outcome == "CPF03" for r in records[-2:])


def test_csv_ends_and_withdraws_plans(server: Server, tmp_path: Path) -> None:
    child, other = server.add_patient(), server.add_patient()
    path = tmp_path / "plans.csv"
    path.write_text(f"{HEADER}\n{child},CPP,active,{day(-9)},,Sandbox City Council,01134960001,\n"
                    f"{other},CPP,active,{day(-9)},,Sandbox City Council,01134960001,\n")
    assert json.loads(load(server, path).stdout)["created"] == 2
    # columns in any order, only the required ones where the record needs no more
    path.write_text(f"status,nhs_number,plan_type,start_date,end_date,authority_name,office_phone\n"
                    f"completed,{child},CPP,{day(-9)},{day(-1)},Sandbox City Council,01134960001\n"
                    f"entered-in-error,{other},CPP,,,,\n")
    summary = json.loads(load(server, path).stdout)
    assert (summary["updated"], summary["withdrawn"], summary["file_code"]) == (1, 1, "CPF02")
    assert shared(server, child) == [] and shared(server, other) == []


def test_file_level_problems_load_nothing(server: Server, tmp_path: Path) -> None:
    child = server.add_patient()
    path = tmp_path / "plans.csv"
    cases = {
        "nhs,plan,status\n": "the header must name the columns",
        f"{HEADER},colour\n{child},CPP,active,{day(-1)},,A,01134960001,,blue\n": "unknown: ['colour']",
        f"{HEADER}\n": "the file has no records",
        "": "the file is empty",
    }
    for content, message in cases.items():
        path.write_text(content)
        result = load(server, path, check=False)
        assert result.returncode == 1
        assert "(CPF01)" in result.stderr and message in result.stderr
        assert child not in result.stderr
    path.write_bytes(b"\xff\xfe" + HEADER.encode("utf-16-le"))
    result = load(server, path, check=False)
    assert result.returncode == 1 and "the file is not UTF-8" in result.stderr
    assert plans(server, [child]) == {child: []}


def test_the_authority_must_be_a_registered_local_authority(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "plans.csv"
    path.write_text(f"{HEADER}\n{server.add_patient()},CPP,active,{day(-1)},,A,01134960001,\n")
    for authority in ("NOPE1", "B86022"):  # unknown; a clinical system's ODS code
        result = load(server, path, authority, check=False)
        assert result.returncode == 1
        assert f"{authority} is not the ODS code of one registered local-authority system" in result.stderr


def test_sandbox_describe_lists_the_authorities_and_plans(server: Server) -> None:
    facts = server.facts
    assert facts["cpis_r4_base"] == f"{server.base}/cpis/FHIR/R4"
    authorities = {a["ods"]: a for a in facts["authorities"]}
    assert sorted(authorities) == ["SBC01", "TCC02"]
    systems = {s["asid"]: s for s in facts["systems"]}
    for authority in authorities.values():
        system = systems[authority["asid"]]
        assert (system["kind"], system["ods"]) == ("local-authority", authority["ods"])
        assert httpx.get(f"{server.base}/_ping", verify=server.tls((system["cert"], system["key"]))).status_code == 200
    patients = {p["key"]: p for p in facts["patients"]}
    states = {key: [(p["authority"], p["plan_type"], p["state"]) for p in patients[key]["plans_at_creation"]]
              for key in ("child-on-cpp", "looked-after-child", "expectant-mother", "child-plan-ended",
                          "child-plan-withdrawn", "child-two-plans")}
    assert states == {
        "child-on-cpp": [("SBC01", "CPP", "active")],
        "looked-after-child": [("TCC02", "LAC", "active")],
        "expectant-mother": [("SBC01", "UCP", "active")],
        "child-plan-ended": [("SBC01", "CPP", "ended")],
        "child-plan-withdrawn": [("TCC02", "CPP", "withdrawn")],
        "child-two-plans": [("SBC01", "CPP", "active"), ("TCC02", "LAC", "active")],
    }
    users = {u["user_id"]: u for u in facts["users"]}
    assert users["555021941103"]["activities"] == ["B0107"] and users["555021943105"]["activities"] == ["B0170"]
