"""A server started from production configuration (``serve --config``) has none of the sandbox's error
simulation: no scenario numbers, no slow-answer header, no /_docs."""

from __future__ import annotations

import secrets
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from safeguarding.sandbox import scenarios as sim
from safeguarding.security import certs
from safeguarding.security.dev_tokens import issue_dev_token
from safeguarding.settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER, Layout

from ..support import NHS_SYSTEM, Server, free_port


def test_a_production_server_has_no_error_simulation(supplier_server: Server, tmp_path: Path) -> None:
    ca = certs.create_ca(tmp_path / "tls")
    certs.issue(ca, certs.CertPair(tmp_path / "tls" / "server.pem", tmp_path / "tls" / "server.key"),
                common_name="localhost", server_names=("localhost", "127.0.0.1"))
    (tmp_path / "audit.key").write_bytes(secrets.token_bytes(32))
    sandbox_keys = Layout(supplier_server.data_dir)  # its issuer's key, trusted here, so tokens are easy to make
    port = free_port()
    config = tmp_path / "safeguarding.toml"
    config.write_text(f"""
database_url = "sqlite:///{tmp_path / 'prod.db'}"
audit_key_file = "audit.key"
service_asid = "990101234567"
port = {port}

[tls]
cert = "tls/server.pem"
key = "tls/server.key"
client_ca = "tls/ca.pem"

[[trusted_issuers]]
issuer = "{SANDBOX_ISSUER}"
audience = "{SANDBOX_AUDIENCE}"
jwks_file = "{sandbox_keys.jwks}"
""")
    subprocess.run([sys.executable, "-m", "safeguarding", "db", "upgrade", "--config", str(config)], check=True,
                   capture_output=True)
    process = subprocess.Popen([sys.executable, "-m", "safeguarding", "serve", "--config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        tls = ssl.create_default_context(cafile=str(ca.cert))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"https://127.0.0.1:{port}/_status", verify=tls).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        token = issue_dev_token(sandbox_keys.signing_key, issuer=SANDBOX_ISSUER, audience=SANDBOX_AUDIENCE,
                                user_id="555021935107", role_profile_id="555021936108", org_code="RR8",
                                activities=["B0370", "B0380"])
        base = f"https://127.0.0.1:{port}"
        with httpx.Client(verify=tls, timeout=30) as client:
            headers = {"Authorization": f"Bearer {token}"}
            for number in (sim.STORE_UNAVAILABLE, sim.DEMOGRAPHICS_UNAVAILABLE):
                answer = client.get(f"{base}/fgm/FHIR/R4/Flag",
                                    params={"patient:identifier": f"{NHS_SYSTEM}|{number}"}, headers=headers)
                assert answer.status_code == 400  # just a number nobody has: not traced
                assert answer.json()["issue"][0]["details"]["coding"][0]["code"] == "INVALID_SEARCH_DATA"
                assert "retry-after" not in answer.headers
            started = time.monotonic()
            held = client.get(f"{base}/fgm/FHIR/R4/Flag", params={"patient:identifier": f"{NHS_SYSTEM}|9990000018"},
                              headers={**headers, "X-Sandbox-Scenario": "slow-answer"})
            assert held.status_code == 400
            assert time.monotonic() - started < sim.DEFAULT_SLOW_SECONDS / 2  # not held for the slow answer
            assert client.get(f"{base}/_docs").status_code == 404
            assert client.get(f"{base}/_docs/swagger-ui-bundle.js").status_code == 404
    finally:
        process.terminate()
        process.wait(timeout=30)
