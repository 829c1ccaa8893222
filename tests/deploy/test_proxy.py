"""Behind a TLS-terminating proxy: a real nginx (Debian's, scripts/install-nginx) does mutual TLS on loopback
and passes the client certificate on in X-SSL-Client-Cert ($ssl_client_escaped_cert); the service listens
with plain HTTP and is configured by the environment alone. nginx connects from 127.0.0.2, the only trusted
proxy address; the tests' own direct requests come from 127.0.0.1 and forge the header."""

from __future__ import annotations

import json
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from safeguarding.proxy import ProxySettings, _forwarded_client, certificate_der
from safeguarding.security import certs
from safeguarding.security.keys import generate_signing_key

from ..support import free_port
from .helpers import REPO, clean_env

NGINX = Path("/usr/sbin/nginx")
AUTHORITY_ASID, AUTHORITY_ODS = "300000000901", "Z99001"
GP_ASID = "047192794599"
QUERY = (REPO / "tests/fixtures/dstu2/query-v2-request.xml").read_text().replace("047192794540", GP_ASID)


@dataclass
class Deployment:
    proxy: str  # https://127.0.0.1:PORT (nginx)
    direct: str  # http://127.0.0.1:PORT (the service)
    ca: Path
    authority: tuple[str, str]
    gp: tuple[str, str]
    stranger: tuple[str, str]  # a certificate from another CA
    log: Path

    def client(self, cert: tuple[str, str] | None = None) -> httpx.Client:
        return httpx.Client(verify=_context(self.ca, cert), timeout=30)


def _context(ca: Path, cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert:
        context.load_cert_chain(*cert)
    return context


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, **kwargs: object) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url}: exited {process.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2, **kwargs).status_code == 200:  # type: ignore[arg-type]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    subprocess.run([REPO / "scripts" / "install-nginx"], check=True)
    root = tmp_path_factory.mktemp("proxy")
    tls = root / "tls"
    ca = certs.create_ca(tls)
    certs.issue(ca, certs.CertPair(tls / "proxy.pem", tls / "proxy.key"), common_name="localhost",
                server_names=("localhost", "127.0.0.1"))
    authority = certs.issue(ca, certs.CertPair(tls / "la.pem", tls / "la.key"), common_name=AUTHORITY_ASID,
                            org=AUTHORITY_ODS, client=True)
    gp = certs.issue(ca, certs.CertPair(tls / "gp.pem", tls / "gp.key"), common_name=GP_ASID, org="B86022",
                     client=True)
    other_ca = certs.create_ca(root / "other")
    stranger = certs.issue(other_ca, certs.CertPair(root / "other" / "x.pem", root / "other" / "x.key"),
                           common_name=AUTHORITY_ASID, client=True)
    (root / "audit.key").write_bytes(secrets.token_bytes(32))
    generate_signing_key(root / "signing.pem", root / "jwks.json")
    (root / "systems.json").write_text(json.dumps({"systems": [
        {"asid": AUTHORITY_ASID, "ods": AUTHORITY_ODS, "kind": "local-authority", "interactions": [],
         "cert_sha256": certs.pem_fingerprint(authority.cert)},
        {"asid": GP_ASID, "ods": "B86022", "kind": "clinical-system",
         "interactions": ["urn:nhs:names:services:clinicals-sync:FGMQuery_2_0"],
         "cert_sha256": certs.pem_fingerprint(gp.cert)},
    ], "revoked": []}))
    service_port, proxy_port = free_port(), free_port()
    # The environment alone: no configuration file.
    env = clean_env(
        SAFEGUARDING_SERVICE_ASID="990101234567", SAFEGUARDING_DATABASE_URL=f"sqlite:///{root / 'service.db'}",
        SAFEGUARDING_AUDIT_KEY_FILE=str(root / "audit.key"), SAFEGUARDING_SYSTEMS_FILE=str(root / "systems.json"),
        SAFEGUARDING_DATA_DIR=str(root), SAFEGUARDING_HOST="127.0.0.1", SAFEGUARDING_PORT=str(service_port),
        SAFEGUARDING_TRUSTED_ISSUERS=json.dumps([{"issuer": "https://idp.test", "audience": "sg",
                                                  "jwks_file": str(root / "jwks.json")}]),
        SAFEGUARDING_PROXY__TRUSTED='["127.0.0.2"]', SAFEGUARDING_LOG_FORMAT="json")
    upgrade = subprocess.run([sys.executable, "-m", "safeguarding", "db", "upgrade"], env=env, capture_output=True,
                             text=True)
    assert upgrade.returncode == 0, upgrade.stderr
    service_log = root / "service.log"
    with service_log.open("wb") as out:
        service = subprocess.Popen([sys.executable, "-m", "safeguarding", "serve"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    nginx_dir = root / "nginx"
    nginx_dir.mkdir()
    temp = {name: nginx_dir / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    (nginx_dir / "nginx.conf").write_text(f"""
worker_processes 1;
pid {nginx_dir / 'nginx.pid'};
error_log {nginx_dir / 'error.log'} warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {temp['body']};
  proxy_temp_path {temp['proxy']};
  fastcgi_temp_path {temp['fastcgi']};
  uwsgi_temp_path {temp['uwsgi']};
  scgi_temp_path {temp['scgi']};
  server {{
    listen 127.0.0.1:{proxy_port} ssl;
    ssl_certificate {tls / 'proxy.pem'};
    ssl_certificate_key {tls / 'proxy.key'};
    ssl_client_certificate {tls / 'ca.pem'};
    ssl_verify_client optional;
    location / {{
      proxy_pass http://127.0.0.1:{service_port};
      proxy_bind 127.0.0.2;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
      proxy_set_header X-Forwarded-Client-Cert "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
  }}
}}
""")
    nginx = subprocess.Popen([str(NGINX), "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf"),
                              "-e", str(nginx_dir / "error.log"), "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deployment = Deployment(f"https://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{service_port}", tls / "ca.pem",
                            (str(authority.cert), str(authority.key)), (str(gp.cert), str(gp.key)),
                            (str(stranger.cert), str(stranger.key)), service_log)
    try:
        _wait(f"{deployment.direct}/_ping", service, service_log)
        _wait(f"{deployment.proxy}/_ping", nginx, nginx_dir / "error.log", verify=_context(deployment.ca))
        yield deployment
    finally:
        for process in (nginx, service):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(nginx_dir, ignore_errors=True)


def test_a_local_authority_is_known_by_the_certificate_the_proxy_verified(deployment: Deployment) -> None:
    with deployment.client(deployment.authority) as client:
        response = client.get(f"{deployment.proxy}/cpis/FHIR/R4/notifications")
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    # X-Forwarded-Proto and Host from the proxy: links are the address the client used, https.
    assert bundle["link"][0]["url"].startswith(f"{deployment.proxy}/cpis/FHIR/R4/notifications")
    with deployment.client() as client:  # through the proxy without a certificate: not the authority
        refused = client.get(f"{deployment.proxy}/cpis/FHIR/R4/notifications")
    assert refused.status_code in (401, 403), refused.text
    assert refused.json()["resourceType"] == "OperationOutcome"


def test_a_dstu2_system_is_known_by_the_certificate_the_proxy_verified(deployment: Deployment) -> None:
    headers = {"Content-Type": "application/xml+fhir",
               "SOAPAction": '"urn:nhs:names:services:clinicals-sync:FGMQuery_2_0"'}
    with deployment.client(deployment.gp) as client:
        answered = client.post(f"{deployment.proxy}/fhir/fgm/query", content=QUERY, headers=headers)
    with deployment.client() as client:
        refused = client.post(f"{deployment.proxy}/fhir/fgm/query", content=QUERY, headers=headers)
    # With the certificate the message is the system's own (its ASID matches): it gets past the ASID check to
    # the NHS number (9999999999 is not a traced number here); without one it is refused as not authorised.
    assert "ASID_CHECK_FAILED" not in answered.text and "INVALID_NHS_NUMBER" in answered.text, answered.text
    assert refused.status_code == 403 and "ASID_CHECK_FAILED" in refused.text, refused.text
    assert "A client certificate is required" in refused.text


def test_a_certificate_of_another_ca_is_refused_by_the_proxy(deployment: Deployment) -> None:
    with deployment.client(deployment.stranger) as client:
        response = client.get(f"{deployment.proxy}/cpis/FHIR/R4/notifications")
    assert response.status_code == 400  # nginx: "The SSL certificate error"
    assert "OperationOutcome" not in response.text


@pytest.mark.parametrize("header", ["X-SSL-Client-Cert", "X-Forwarded-Client-Cert"])
def test_a_forged_certificate_header_from_a_non_proxy_address_is_refused_and_logged(
        deployment: Deployment, header: str) -> None:
    pem = Path(deployment.authority[0]).read_text()
    value = quote(pem, safe="") if header == "X-SSL-Client-Cert" else f'Hash=00;Cert="{quote(pem, safe="")}"'
    response = httpx.get(f"{deployment.direct}/cpis/FHIR/R4/notifications", headers={header: value}, timeout=30)
    assert response.status_code == 403
    issue = response.json()["issue"][0]
    assert issue["code"] == "forbidden" and issue["details"]["coding"][0]["code"] == "ACCESS_DENIED"
    assert issue["diagnostics"] == "A client certificate header is accepted only from a trusted proxy"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in deployment.log.read_text().splitlines() if line.startswith("{")]
        refused = [line for line in lines if line.get("event") == "PROXY_HEADER_REFUSED"]
        if refused:
            break
        time.sleep(0.2)
    assert refused and refused[-1]["host"] == "127.0.0.1" and refused[-1]["level"] == "WARNING"
    assert pem.splitlines()[1] not in deployment.log.read_text()


def test_without_the_header_a_direct_request_is_served(deployment: Deployment) -> None:
    assert httpx.get(f"{deployment.direct}/_ping", timeout=30).status_code == 200


def test_forwarded_certificate_forms() -> None:
    tmp = Path(tempfile.mkdtemp())
    ca = certs.create_ca(tmp)
    pair = certs.issue(ca, certs.CertPair(tmp / "c.pem", tmp / "c.key"), common_name="x", client=True)
    pem = pair.cert.read_text()
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    assert certificate_der(quote(pem, safe="")) == der  # nginx $ssl_client_escaped_cert
    xfcc = f'By=spiffe://a;Hash=ab;Cert="{quote(pem, safe="")}";Subject="CN=x"'
    assert certificate_der(xfcc, xfcc=True) == der
    assert certificate_der(f"{xfcc},By=spiffe://b;Cert=x", xfcc=True) == der  # the first element: the client's
    assert certificate_der("") is None and certificate_der("Hash=ab;Subject=x", xfcc=True) is None
    with pytest.raises(ValueError, match="not a PEM certificate"):
        certificate_der("-----BEGIN CERTIFICATE-----%0Anonsense%0A-----END CERTIFICATE-----")
    shutil.rmtree(tmp)


def test_x_forwarded_for_takes_the_nearest_address_that_is_not_a_trusted_proxy() -> None:
    import ipaddress

    settings = ProxySettings(trusted=(ipaddress.ip_network("10.0.0.0/24"),))
    assert _forwarded_client(["203.0.113.9, 198.51.100.7"], settings, "10.0.0.5") == "198.51.100.7"
    assert _forwarded_client(["198.51.100.7, 10.0.0.9"], settings, "10.0.0.5") == "198.51.100.7"
    assert _forwarded_client(["not-an-address"], settings, "10.0.0.5") == "10.0.0.5"


def test_outside_the_sandbox_a_refused_token_is_not_explained(deployment: Deployment) -> None:
    with deployment.client() as client:
        response = client.get(f"{deployment.proxy}/fgm/FHIR/R4/Flag",
                              params={"patient:identifier": "https://fhir.nhs.uk/Id/nhs-number|9990000018"},
                              headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 401
    assert response.json()["issue"][0]["diagnostics"] == "Missing or invalid access token"
