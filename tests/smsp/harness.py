"""The SMSP test harness: SMSPs run as real processes (``safeguarding smsp serve``) with real mutual TLS
towards their local clients and towards a national service (ours, or a stand-in), and helpers to read
their DSTU2 answers."""

from __future__ import annotations

import json
import secrets
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from lxml import etree

from safeguarding.audit.chain import verify
from safeguarding.security import certs
from safeguarding.store.sql import SqlStore

from ..support import FIXTURES, free_port

NS = {"f": "http://hl7.org/fhir"}
SMSP_ASID = "200000000999"
CLIENT_ASID = "300000000001"
NATIONAL_ASID = "990101234567"
CLIENT_MESSAGE_ID = "14daadee-26e1-4d6a-9e6a-7f4af9b58870"  # the guide's example MessageHeader id
GIRL, GIRL_WITHOUT = "9990000018", "9990000026"
LOCAL_ISSUER = "https://idp.local-trust.invalid"


@dataclass
class Smsp:
    port: int
    config: Path
    data_dir: Path
    client_cert: tuple[str, str]
    ca: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Smsp:
        with (self.data_dir / "smsp.log").open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "safeguarding", "smsp", "serve", "--config",
                                             str(self.config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"https://127.0.0.1:{self.port}/_ping", verify=self.tls()).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("SMSP did not start")

    def log(self) -> str:
        return (self.data_dir / "smsp.log").read_text()

    def events(self, event: str) -> list[dict[str, object]]:
        """The SMSP's log lines (JSON) with this event code."""
        lines = (json.loads(line) for line in self.log().splitlines() if line.startswith("{"))
        return [line for line in lines if line.get("event") == event]

    def rss_kib(self) -> int:
        """The SMSP process's resident set (VmRSS), in KiB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=30)

    def tls(self, cert: tuple[str, str] | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if cert:
            context.load_cert_chain(*cert)
        return context

    def query(self, nhs_number: str = GIRL, *, local_id: str = "12456", cert: bool = True,
              body: bytes | None = None, token: str | None = None) -> httpx.Response:
        message = body if body is not None else query_message(nhs_number, local_id)
        headers = {"Content-Type": "text/xml", **({"Authorization": f"Bearer {token}"} if token else {})}
        with httpx.Client(verify=self.tls(self.client_cert if cert else None), timeout=30) as client:
            return client.post(f"https://127.0.0.1:{self.port}/fhir/fgm/query", content=message, headers=headers)

    def audit(self) -> list:  # type: ignore[type-arg]
        store = SqlStore.open(f"sqlite:///{self.data_dir / 'smsp.db'}", (self.data_dir / "audit.key").read_bytes())
        try:
            head = store.audit_head()
            records = list(store.audit_records())
            assert verify((self.data_dir / "audit.key").read_bytes(), records, *head).ok
            return records
        finally:
            store.close()


def query_message(nhs_number: str, local_id: str = "12456") -> bytes:
    """The NHS guide's query example, as a local client sends it to the SMSP."""
    xml = (FIXTURES / "dstu2" / "query-v2-request.xml").read_bytes()
    return (xml.replace(b"9999999999", nhs_number.encode()).replace(b'value="12456"', f'value="{local_id}"'.encode())
            .replace(b"asid:047192794540", f"asid:{CLIENT_ASID}".encode()))


@dataclass
class Upstream:
    url: str
    ca: Path


def local_side(root: Path) -> dict[str, Path]:
    """The SMSP's local trust: a local CA, the SMSP's server certificate, one client's certificate."""
    local_ca = certs.create_ca(root / "local", "local trust CA")
    certs.issue(local_ca, certs.CertPair(root / "smsp.pem", root / "smsp.key"), common_name="localhost",
                server_names=("localhost", "127.0.0.1"))
    certs.issue(local_ca, certs.CertPair(root / "client.pem", root / "client.key"), common_name=CLIENT_ASID,
                org="A81001", client=True)
    return {"root": root, "local_ca": local_ca.cert}


def make_smsp(pki: dict[str, Path], upstream: Upstream, name: str, **options: object) -> Smsp:
    data = pki["root"] / name
    data.mkdir()
    (data / "audit.key").write_bytes(secrets.token_bytes(32))
    (data / "clients.json").write_text(json.dumps({"systems": [{
        "asid": CLIENT_ASID, "ods": "A81001", "kind": "clinical-system",
        "interactions": ["urn:nhs:names:services:clinicals-sync:FGMQuery_2_0"]}]}))
    (data / "users.json").write_text(json.dumps({"users": [
        {"local_id": "12456", "sds_user_id": "555021935107", "sds_role_profile_id": "555021936108",
         "activities": ["B0370"]},
        {"local_id": "77777", "sds_user_id": "555021939101", "sds_role_profile_id": "555021940102",
         "activities": ["B0107"]}]}))
    limits = {"per_client_per_second": 50, "per_client_burst": 100} | dict(options.pop("limits", {}))  # type: ignore[call-overload]
    national_opts = {"timeout_seconds": 2, "breaker_threshold": 3, "breaker_reset_seconds": 30} | dict(
        options.pop("national", {}))  # type: ignore[call-overload]
    port = free_port()
    lines = [f'port = {port}', 'audit_key_file = "audit.key"', f'smsp_asid = "{SMSP_ASID}"',
             f'local_store_fallback = {"true" if options.get("fallback") else "false"}',
             "[tls]", f'cert = "{pki.get("smsp_cert", pki["root"] / "smsp.pem")}"',
             f'key = "{pki.get("smsp_key", pki["root"] / "smsp.key")}"',
             f'client_ca = "{pki["local_ca"]}"',
             "[national]", f'url = "{upstream.url}"', f'asid = "{NATIONAL_ASID}"', f'ca = "{upstream.ca}"',
             f'cert = "{pki["smsp_national_cert"]}"', f'key = "{pki["smsp_national_key"]}"',
             *(f"{k} = {v}" for k, v in national_opts.items()),
             "[limits]", *(f"{k} = {v}" for k, v in limits.items())]
    if options.get("jwks"):
        lines += ["[[trusted_issuers]]", f'issuer = "{LOCAL_ISSUER}"', 'audience = "smsp"',
                  f'jwks_file = "{options["jwks"]}"']
    lines += list(options.get("extra", []))  # type: ignore[call-overload]
    config = data / "smsp.toml"
    config.write_text("\n".join(lines) + "\n")
    client = (str(pki.get("client_cert", pki["root"] / "client.pem")),
              str(pki.get("client_key", pki["root"] / "client.key")))
    return Smsp(port, config, data, client, pki["local_ca"]).start()


STANDIN = Path(__file__).with_name("standin.py")


class Standin:
    def __init__(self, mode: str, pki: dict[str, Path], log: Path) -> None:
        self.port, self.log = free_port(), log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(STANDIN), mode, str(self.port), str(pki["national_cert"]),
                 str(pki["national_key"]), str(pki["national_ca"])], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while b"listening" not in log.read_bytes():
            assert self.process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        self.upstream = Upstream(f"https://127.0.0.1:{self.port}", pki["national_ca"])

    def requests(self) -> int:
        return self.log.read_text().count("request\n")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.process.kill()
        self.process.wait(timeout=10)


def _parse(response: httpx.Response) -> etree._Element:
    assert response.headers["content-type"] == "application/xml+fhir;charset=utf-8"
    return etree.fromstring(response.content)


def _outcome(root: etree._Element) -> tuple[str, str]:
    issue = root.find("f:entry/f:resource/f:OperationOutcome/f:issue", NS)
    assert issue is not None
    return (issue.find("f:details/f:coding/f:code", NS).get("value"),  # type: ignore[union-attr]
            issue.find("f:code", NS).get("value"))  # type: ignore[union-attr]


