"""The service started production-style (``safeguarding serve --config``) from a TOML file written here, over
TLS with a generated CA, for tests of what only a real deployment configures (trusted issuers, PDS)."""

from __future__ import annotations

import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from safeguarding.domain.patients import Patient
from safeguarding.security import certs
from safeguarding.store.sql import SqlStore

from .support import free_port


@dataclass(frozen=True)
class Production:
    base: str
    tls: ssl.SSLContext
    log: Path
    root: Path

    @property
    def fgm(self) -> str:
        return f"{self.base}/fgm/FHIR/R4"

    @property
    def cpis(self) -> str:
        return f"{self.base}/cpis/FHIR/R4"

    def client(self) -> httpx.Client:
        return httpx.Client(verify=self.tls, timeout=30)


@contextmanager
def production(root: Path, config: str, log: Path, patients: Iterable[Patient] = ()) -> Iterator[Production]:
    """``config`` is the TOML after the basics (database, audit key, TLS, port): trusted issuers and more."""
    root.mkdir(parents=True, exist_ok=True)
    ca = certs.create_ca(root / "tls")
    certs.issue(ca, certs.CertPair(root / "tls" / "server.pem", root / "tls" / "server.key"),
                common_name="localhost", server_names=("localhost", "127.0.0.1"))
    audit_key = secrets.token_bytes(32)
    (root / "audit.key").write_bytes(audit_key)
    port = free_port()
    database_url = f"sqlite:///{root / 'prod.db'}"
    path = root / "safeguarding.toml"
    path.write_text(f"""
database_url = "{database_url}"
audit_key_file = "audit.key"
service_asid = "990101234567"
port = {port}

[tls]
cert = "tls/server.pem"
key = "tls/server.key"
client_ca = "tls/ca.pem"
""" + config)
    subprocess.run([sys.executable, "-m", "safeguarding", "db", "upgrade", "--config", str(path)], check=True,
                   capture_output=True)
    store = SqlStore.open(database_url, audit_key)
    with store.transaction() as tx:
        for patient in patients:
            tx.put_patient(patient)
    store.close()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "safeguarding", "serve", "--config", str(path)],
                                   stdout=out, stderr=subprocess.STDOUT)
    tls = ssl.create_default_context(cafile=str(ca.cert))
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/_ping", verify=tls).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"server did not start; see {log}") from None
                time.sleep(0.2)
        yield Production(base, tls, log, root)
    finally:
        process.terminate()
        process.wait(timeout=30)
