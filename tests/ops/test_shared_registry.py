"""Two nodes (two ``serve --config`` processes, each with its own directory and files) on one PostgreSQL database:
a revocation made with ``safeguarding systems revoke`` on one node is in force on both within seconds, without
touching the other node's files."""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from safeguarding.sandbox.setup import ensure_sandbox
from safeguarding.settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER, SANDBOX_SERVICE_ASID

from ..api.test_fgm_dstu2 import message
from ..deploy.helpers import clean_env
from ..pg import create_database, drop_database
from ..support import free_port

GP_ASID = "047192794544"  # the sandbox's clinical system, registered for every FGM-IS DSTU2 interaction
GIRL = "9990000018"


@dataclass
class Node:
    directory: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def config(self) -> Path:
        return self.directory / "safeguarding.toml"

    def query(self, cert: tuple[str, str]) -> httpx.Response:
        with httpx.Client(verify=_trust(self.directory, cert), timeout=30) as client:
            return client.post(f"https://127.0.0.1:{self.port}/fhir/fgm/query", content=message("query", GIRL),
                               headers={"Content-Type": "text/xml; charset=utf-8"})


def _trust(directory: Path, cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(directory / "tls" / "ca.pem"))
    if cert:
        context.load_cert_chain(*cert)
    return context


def _node(prepared: Path, directory: Path, database_url: str, log: Path) -> Node:
    """A node with explicit configuration: its own copy of the files every node is given."""
    shutil.copytree(prepared, directory, ignore=shutil.ignore_patterns("audit-*", "server.json", "*.db*"))
    (directory / "safeguarding.toml").write_text(f'''
data_dir = "."
database_url = "{database_url}"
audit_key_file = "audit.key"
service_asid = "{SANDBOX_SERVICE_ASID}"
systems_file = "systems.json"

[tls]
cert = "tls/server.pem"
key = "tls/server.key"
client_ca = "tls/ca.pem"

[[trusted_issuers]]
issuer = "{SANDBOX_ISSUER}"
audience = "{SANDBOX_AUDIENCE}"
jwks_file = "keys/jwks.json"
''')
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "safeguarding", "serve", "--config",
                                    str(directory / "safeguarding.toml"), "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, env=clean_env(), start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"node exited early; see {log}")
        try:
            httpx.get(f"https://127.0.0.1:{port}/_ping", verify=_trust(directory))
            return Node(directory, port, process)
        except (httpx.HTTPError, ssl.SSLError, OSError):
            time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=40)
    raise RuntimeError("node did not start within 60 s")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    url = create_database()
    root = tmp_path_factory.mktemp("nodes")
    ensure_sandbox(root / "prepared", database_url=url)  # certificates, keys, systems.json; schema and patients
    started: list[Node] = []
    try:
        started.append(_node(root / "prepared", root / "one", url, root / "one.log"))
        started.append(_node(root / "prepared", root / "two", url, root / "two.log"))
        yield started[0], started[1]
    finally:
        for node in started:
            node.process.send_signal(signal.SIGTERM)
            node.process.wait(timeout=40)
        drop_database(url)


def test_a_revocation_on_one_node_applies_on_every_node(nodes: tuple[Node, Node]) -> None:
    first, second = nodes
    cert = (str(first.directory / "systems" / f"{GP_ASID}.pem"), str(first.directory / "systems" / f"{GP_ASID}.key"))
    assert [node.query(cert).status_code for node in nodes] == [200, 200]
    second_file = (second.directory / "systems.json").read_bytes()

    revoked = subprocess.run([sys.executable, "-m", "safeguarding", "systems", "revoke", "--config", str(first.config),
                              "--cert", cert[0], "--reason", "test"], capture_output=True, text=True, timeout=60,
                             env=clean_env())
    assert revoked.returncode == 0, revoked.stderr

    deadline = time.monotonic() + 15  # each node looks every second; generous slack on a loaded host
    statuses: list[int] = []
    while time.monotonic() < deadline:
        statuses = [node.query(cert).status_code for node in nodes]
        if statuses == [403, 403]:
            break
        time.sleep(0.5)
    assert statuses == [403, 403]
    refused = second.query(cert)
    assert b"ASID_CHECK_FAILED" in refused.content and b"has been revoked" in refused.content
    assert (second.directory / "systems.json").read_bytes() == second_file  # nothing copied by hand

    listed = subprocess.run([sys.executable, "-m", "safeguarding", "systems", "list", "--json", "--config",
                             str(second.config)], capture_output=True, text=True, timeout=60, env=clean_env())
    assert listed.returncode == 0 and '"reason": "test"' in listed.stdout
