"""``safeguarding load patients`` refuses a record with a security label it does not understand (nothing is
loaded, nothing echoed), and loads the PDS sandbox's restricted patient as restricted."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from safeguarding.domain.patients import Gender, Patient, SecurityLabel

from ..pds_server import EXAMPLES, resource
from ..support import Server, fresh_nhs_number, years_ago


def _load(server: Server, bundle: dict[str, object], path: Path) -> subprocess.CompletedProcess[str]:
    path.write_text(json.dumps(bundle))
    return subprocess.run([sys.executable, "-m", "safeguarding", "load", "patients", str(path), "--data-dir",
                           str(server.data_dir)], capture_output=True, text=True, env=server.env)


def test_an_unknown_security_label_refuses_the_whole_file(server: Server, tmp_path: Path) -> None:
    good, odd = (Patient(fresh_nhs_number(), True, years_ago(date.today(), 9), Gender.FEMALE) for _ in range(2))
    strange = resource(odd)
    strange["meta"]["security"] = [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                    "code": "N"}]
    result = _load(server, {"resourceType": "Bundle", "entry": [{"resource": resource(good)},
                                                               {"resource": strange}]}, tmp_path / "p.json")
    assert result.returncode == 1
    assert "entry 1: a security label code this service does not understand" in result.stderr
    assert odd.nhs_number not in result.stderr + result.stdout
    assert server.stored(lambda store: store.read_patient(good.nhs_number)) is None  # nothing loaded


def test_the_pds_sandbox_restricted_patient_loads_as_restricted(server: Server, tmp_path: Path) -> None:
    record = json.loads((EXAMPLES / "patient_9000000025.json").read_text())
    result = _load(server, {"resourceType": "Bundle", "entry": [{"resource": record}]}, tmp_path / "r.json")
    assert result.returncode == 0, result.stderr
    patient = server.stored(lambda store: store.read_patient("9000000025"))
    assert patient is not None and patient.security is SecurityLabel.RESTRICTED
