"""A production-style start: explicit TOML configuration, no sandbox, a token issuer whose keys are fetched
from its JWKS URL (served here on loopback, as a real identity provider serves them)."""

from __future__ import annotations

import json
import secrets
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from safeguarding.domain.patients import Gender, Patient
from safeguarding.security import certs
from safeguarding.store.sql import SqlStore

from ..support import NHS_SYSTEM, free_port, fresh_nhs_number, years_ago

ISSUER = "https://idp.test.invalid/oidc"
AUDIENCE = "safeguarding-test-client"


@pytest.fixture()
def jwks_server() -> Iterator[tuple[str, ec.EllipticCurvePrivateKey]]:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "idp-key-1", "use": "sig", "alg": "ES256"})
    document = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json", key
    httpd.shutdown()
    httpd.server_close()


def test_serve_from_explicit_configuration_with_a_jwks_url_issuer(
    tmp_path: Path, jwks_server: tuple[str, ec.EllipticCurvePrivateKey]
) -> None:
    jwks_url, idp_key = jwks_server
    ca = certs.create_ca(tmp_path / "tls")
    certs.issue(ca, certs.CertPair(tmp_path / "tls" / "server.pem", tmp_path / "tls" / "server.key"),
                common_name="localhost", server_names=("localhost", "127.0.0.1"))
    (tmp_path / "audit.key").write_bytes(secrets.token_bytes(32))
    port = free_port()
    config = tmp_path / "safeguarding.toml"
    config.write_text(f"""
database_url = "sqlite:///{tmp_path / 'prod.db'}"
audit_key_file = "audit.key"
service_asid = "990101234567"
error_system = "https://fhir.hl7.org.uk/CodeSystem/UKCore-SpineErrorOrWarningCode"
port = {port}

[tls]
cert = "tls/server.pem"
key = "tls/server.key"
client_ca = "tls/ca.pem"

[[trusted_issuers]]
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
jwks_url = "{jwks_url}"
""")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "safeguarding", *args, "--config", str(config)],
                              capture_output=True, text=True)

    refused = cli("serve")
    assert refused.returncode == 1
    assert "run 'safeguarding db upgrade' first" in refused.stderr
    assert cli("db", "upgrade").returncode == 0

    child = fresh_nhs_number()
    store = SqlStore.open(f"sqlite:///{tmp_path / 'prod.db'}", (tmp_path / "audit.key").read_bytes())
    with store.transaction() as tx:
        tx.put_patient(Patient(child, True, years_ago(date.today(), 5), Gender.FEMALE))
    store.close()

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
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u1", "iat": now, "exp": now + 300,
                  "nhsid_useruid": "u1", "nhsid_nrbac_roles": [{"person_roleid": "r1", "org_code": "RR8",
                                                                 "activity_codes": ["B0370", "B0380"]}]}
        token = jwt.encode(claims, idp_key, algorithm="ES256", headers={"kid": "idp-key-1"})
        base = f"https://127.0.0.1:{port}/fgm/FHIR/R4"
        with httpx.Client(verify=tls) as client:
            headers = {"Authorization": f"Bearer {token}"}
            found = client.get(f"{base}/Flag", params={"patient:identifier": f"{NHS_SYSTEM}|{child}"},
                               headers=headers)
            assert found.status_code == 200 and found.json()["total"] == 0
            # a token from the sandbox's kind of issuer is not trusted here
            sandbox_like = jwt.encode({**claims, "iss": "https://sandbox.safeguarding.invalid/issuer"}, idp_key,
                                      algorithm="ES256", headers={"kid": "idp-key-1"})
            refused = client.get(f"{base}/Flag", params={"patient:identifier": child},
                                 headers={"Authorization": f"Bearer {sandbox_like}"})
            assert refused.status_code == 401
            # the configured error code system (DIGEST A5) is the one errors carry
            assert refused.json()["issue"][0]["details"]["coding"][0] == {
                "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-SpineErrorOrWarningCode",
                "code": "ACCESS_DENIED", "display": "Access has been denied to process this request"}
            unrouted = client.get(f"{base}/Patient")  # the router's own 404 uses the same system
            assert unrouted.status_code == 404
            assert unrouted.json()["issue"][0]["details"]["coding"][0]["system"] == (
                "https://fhir.hl7.org.uk/CodeSystem/UKCore-SpineErrorOrWarningCode")
            # a key the issuer does not publish
            other = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                               headers={"kid": "idp-key-1"})
            assert client.get(f"{base}/Flag", params={"patient:identifier": child},
                              headers={"Authorization": f"Bearer {other}"}).status_code == 401
        verify = cli("audit", "verify")
        assert verify.returncode == 0 and json.loads(verify.stdout)["checked"] == 3
    finally:
        process.terminate()
        process.wait(timeout=30)
