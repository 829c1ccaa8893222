"""Test support: a real sandbox server in a subprocess, over real HTTPS, and helpers around it."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from fhir.resources.R4B import get_fhir_model_class

from safeguarding.domain.audit import AuditRecord
from safeguarding.domain.nhs_number import check_digit
from safeguarding.domain.patients import Gender, Patient, SecurityLabel
from safeguarding.security.dev_tokens import issue_dev_token
from safeguarding.security.keys import key_id, load_private_key
from safeguarding.settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER, Layout, sandbox_settings
from safeguarding.store.sql import SqlStore

FIXTURES = Path(__file__).resolve().parent / "fixtures"
T = TypeVar("T")

ERROR_SYSTEM = "https://fhir.nhs.uk/CodeSystem/England-SpineErrorOrWarningCode"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
_used_numbers: set[str] = set()
USED_NHS_NUMBERS: set[str] = _used_numbers  # every number a test made: the log check looks for each


def fresh_nhs_number() -> str:
    """A valid NHS number in the test range that no other test uses (the sandbox uses 99900000xx)."""
    while True:
        stem = str(random.randint(999_100_000, 999_999_999))
        digit = check_digit(stem)
        if digit is not None and stem + str(digit) not in _used_numbers:
            number = stem + str(digit)
            _used_numbers.add(number)
            return number


def invalid_check_digit(number: str) -> str:
    return number[:9] + str((int(number[9]) + 1) % 10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def years_ago(today: date, years: int, days: int = 0) -> date:
    day = today - timedelta(days=days)
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, month=3, day=1)


@dataclass
class Server:
    data_dir: Path
    port: int
    log_path: Path
    database_url: str | None = None
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return "postgresql" if self.database_url else "sqlite"

    @property
    def env(self) -> dict[str, str]:
        """The environment for running ``safeguarding`` commands against this server's store."""
        env = dict(os.environ)
        if self.database_url:
            env["SAFEGUARDING_DATABASE_URL"] = self.database_url
        return env

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def fgm(self) -> str:
        return f"{self.base}/fgm/FHIR/R4"

    @property
    def ca(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    def start(self) -> Server:
        env = self.env
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "safeguarding", "serve", "--sandbox", "--data-dir", str(self.data_dir),
                 "--port", str(self.port), *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,  # its own process group: signals reach every worker
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}")
            try:
                if self.ca.exists() and httpx.get(f"{self.base}/_ping", verify=self.tls()).status_code == 200:
                    break
            except (httpx.HTTPError, ssl.SSLError, OSError):
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("server did not start within 60 s")
        self.facts = json.loads(subprocess.check_output(
            [sys.executable, "-m", "safeguarding", "sandbox", "describe", "--data-dir", str(self.data_dir), "--json",
             "--port", str(self.port)]))
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(timeout=10)

    def signal(self, signum: int) -> None:
        """Signal the server and every worker process (its whole process group)."""
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def tls(self, cert: tuple[str, str] | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if cert:
            context.load_cert_chain(*cert)
        return context

    def client(self, cert: tuple[str, str] | None = None) -> httpx.Client:
        return httpx.Client(verify=self.tls(cert), timeout=30)

    def token(self, activities: tuple[str, ...] = ("B0370", "B0380"), **overrides: Any) -> str:
        args: dict[str, Any] = dict(issuer=SANDBOX_ISSUER, audience=SANDBOX_AUDIENCE, user_id="555021935107",
                                    role_profile_id="555021936108", org_code="RR8", activities=list(activities))
        args.update(overrides)
        return issue_dev_token(Layout(self.data_dir).signing_key, **args)

    def headers(self, activities: tuple[str, ...] = ("B0370", "B0380"), **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(activities)}", **extra}

    def store(self) -> SqlStore:
        settings = sandbox_settings(self.data_dir, database_url=self.database_url)
        return SqlStore.open(settings.database_url, settings.audit_key.value)

    def stored(self, read: Callable[[SqlStore], T]) -> T:
        """Read the server's store directly (what was really written), then close it."""
        store = self.store()
        try:
            return read(store)
        finally:
            store.close()

    @property
    def cpis(self) -> str:
        return f"{self.base}/cpis/FHIR/R4"

    def system_cert(self, asid: str) -> tuple[str, str]:
        """A sandbox system's client certificate and key, as ``sandbox describe`` lists them."""
        [system] = [s for s in self.facts["systems"] if s["asid"] == asid]
        return system["cert"], system["key"]

    def add_patient(self, *, gender: Gender | None = Gender.FEMALE, birth_date: date | None = None, age: int = 10,
                    verified: bool = True, security: SecurityLabel = SecurityLabel.UNRESTRICTED,
                    superseded_by: str | None = None) -> str:
        number = fresh_nhs_number()
        store = self.store()
        try:
            with store.transaction() as tx:
                tx.put_patient(Patient(number, verified, birth_date or years_ago(date.today(), age, 30), gender,
                                       security, "Y12345", superseded_by=superseded_by))
        finally:
            store.close()
        return number

    def history(self, nhs_number: str) -> list[Any]:
        store = self.store()
        try:
            return store.read_history(nhs_number)
        finally:
            store.close()

    def audit_for(self, request_id: str) -> list[AuditRecord]:
        store = self.store()
        try:
            return [r for r in store.audit_records() if r.event.request_id == request_id]
        finally:
            store.close()


def fhir(response: httpx.Response) -> Any:
    """Parse a response body with an independent FHIR library (fhir.resources R4B models)."""
    body = response.json()
    return get_fhir_model_class(body["resourceType"]).model_validate(body)


def assert_outcome(response: httpx.Response, status: int, code: str, diagnostics: str, *,
                   issue_type: str = "invalid", severity: str = "error") -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
    outcome = fhir(response)
    assert outcome.get_resource_type() == "OperationOutcome"
    body = response.json()
    assert len(body["issue"]) == 1
    issue = body["issue"][0]
    assert issue["severity"] == severity
    assert issue["code"] == issue_type
    assert issue["details"]["coding"][0]["system"] == ERROR_SYSTEM
    assert issue["details"]["coding"][0]["code"] == code
    assert issue["diagnostics"] == diagnostics
    return body


def flag_body(nhs_number: str, *, start: str | None = None, status: str = "active",
              code: str = "902961000000107", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Flag",
        "status": status,
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
        "subject": {"identifier": {"system": NHS_SYSTEM, "value": nhs_number}},
        "period": {"start": start or (date.today() - timedelta(days=3)).isoformat()},
    }
    body.update(extra)
    return body


REMOVAL_EXTENSION = "https://fhir.nhs.uk/England/StructureDefinition/Extension-England-FlagRemovalReason"
REMOVAL_SYSTEM = "https://fhir.nhs.uk/England/CodeSystem/England-FGMRemovalReason"


def removal_body(flag: dict[str, Any], *, code: str = "0", status: str = "entered-in-error",
                 legacy: bool = False) -> dict[str, Any]:
    body = {k: v for k, v in flag.items() if k not in ("meta", "extension")}
    body["status"] = status
    if legacy:
        body["extension"] = [{
            "url": "https://fhir.nhs.uk/StructureDefinition/Extension-England-FGMRemovalReason",
            "valueCodeableConcept": {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/England-FGMRemovalReason",
                                                 "code": code}]},
        }]
    else:
        body["extension"] = [{"url": REMOVAL_EXTENSION, "valueCoding": {"system": REMOVAL_SYSTEM, "code": code}}]
    return body


def sandbox_claims(**overrides: Any) -> dict[str, Any]:
    """CIS2-shaped claims the sandbox accepts (B0370 and B0380); an override of None removes that claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": SANDBOX_ISSUER, "aud": SANDBOX_AUDIENCE, "sub": "555021935107", "iat": now, "exp": now + 600,
        "jti": "test", "nhsid_useruid": "555021935107", "selected_roleid": "555021936108",
        "nhsid_nrbac_roles": [{"person_roleid": "555021936108", "org_code": "RR8", "role_code": "S8000:G8000:R8000",
                               "activity_codes": ["B0370", "B0380"]}],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sandbox_key(server: Server) -> tuple[rsa.RSAPrivateKey, str]:
    """The sandbox's token-signing key and its kid, to forge tokens from."""
    key = load_private_key(Layout(server.data_dir).signing_key)
    return key, key_id(key.public_key())
