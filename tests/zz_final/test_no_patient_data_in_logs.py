"""Runs last (directory order): the server logs of the whole run hold no NHS number and no token."""

from __future__ import annotations

import json

import pytest

from ..support import USED_NHS_NUMBERS, Server


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_server_log_has_no_patient_data_or_tokens(backend: str, request: pytest.FixtureRequest) -> None:
    server: Server = request.getfixturevalue(f"{backend}_server")
    text = server.log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "REQUEST_COMPLETED" for line in lines)  # the log is the one we think it is
    numbers = set(USED_NHS_NUMBERS) | {p["nhs_number"] for p in server.facts["patients"]}
    assert len(numbers) > 11  # the sandbox's own, plus those the tests made
    leaked = sorted(n for n in numbers if n in text)
    assert leaked == []
    assert "eyJ" not in text and "Bearer" not in text  # no JWTs or Authorization headers
    for line in lines:
        assert "body" not in line and "headers" not in line
