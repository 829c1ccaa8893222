"""Runs after the supplier tests (file order): the scenarios, the clients and Newman left no patient data
and no token in the server's log."""

from __future__ import annotations

import json

from safeguarding.sandbox import scenarios as sim
from safeguarding.sandbox.catalogue import SCENARIOS

from ..support import USED_NHS_NUMBERS, Server


def test_the_supplier_servers_log_has_no_patient_data_or_tokens(supplier_server: Server) -> None:
    text = supplier_server.log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "REQUEST_COMPLETED" for line in lines)
    numbers = (set(USED_NHS_NUMBERS) | {p["nhs_number"] for p in supplier_server.facts["patients"]}
               | {s.nhs_number for s in SCENARIOS if s.nhs_number}
               | {sim.DEMOGRAPHICS_UNAVAILABLE, sim.STORE_UNAVAILABLE, sim.SLOW_ANSWER})
    assert sorted(n for n in numbers if n in text) == []
    assert "eyJ" not in text and "Bearer" not in text
