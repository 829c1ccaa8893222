"""A server started from production configuration (``serve --config``) has none of the sandbox's error
simulation: no scenario numbers, no slow-answer header, no /_docs."""

from __future__ import annotations

import time
from pathlib import Path

from safeguarding.sandbox import scenarios as sim
from safeguarding.security.dev_tokens import issue_dev_token
from safeguarding.settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER, Layout

from ..production_server import production
from ..support import NHS_SYSTEM, Server


def test_a_production_server_has_no_error_simulation(supplier_server: Server, tmp_path: Path) -> None:
    sandbox_keys = Layout(supplier_server.data_dir)  # its issuer's key, trusted here, so tokens are easy to make
    config = f"""
[[trusted_issuers]]
issuer = "{SANDBOX_ISSUER}"
audience = "{SANDBOX_AUDIENCE}"
jwks_file = "{sandbox_keys.jwks}"
"""
    with production(tmp_path / "prod", config, tmp_path / "prod.log") as server, server.client() as client:
        token = issue_dev_token(sandbox_keys.signing_key, issuer=SANDBOX_ISSUER, audience=SANDBOX_AUDIENCE,
                                user_id="555021935107", role_profile_id="555021936108", org_code="RR8",
                                activities=["B0370", "B0380"])
        headers = {"Authorization": f"Bearer {token}"}
        for number in (sim.STORE_UNAVAILABLE, sim.DEMOGRAPHICS_UNAVAILABLE):
            answer = client.get(f"{server.fgm}/Flag", params={"patient:identifier": f"{NHS_SYSTEM}|{number}"},
                                headers=headers)
            assert answer.status_code == 400  # just a number nobody has: not traced
            assert answer.json()["issue"][0]["details"]["coding"][0]["code"] == "INVALID_SEARCH_DATA"
            assert "retry-after" not in answer.headers
        started = time.monotonic()
        held = client.get(f"{server.fgm}/Flag", params={"patient:identifier": f"{NHS_SYSTEM}|9990000018"},
                          headers={**headers, "X-Sandbox-Scenario": "slow-answer"})
        assert held.status_code == 400
        assert time.monotonic() - started < sim.DEFAULT_SLOW_SECONDS / 2  # not held for the slow answer
        assert client.get(f"{server.base}/_docs").status_code == 404
        assert client.get(f"{server.base}/_docs/swagger-ui-bundle.js").status_code == 404
