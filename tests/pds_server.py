"""A PDS-shaped FHIR R4 server on loopback over TLS, for the demographics tests.

``POST /oauth2/token`` checks the client assertion (RFC 7523: RS512 signed by the registered key under its
``kid``, ``iss`` = ``sub`` = the client id, ``aud`` = this token URL, a fresh ``jti``, ``exp`` at most
5 minutes ahead) and issues an access token. ``GET /FHIR/R4/Patient/{id}`` needs that token, an
``X-Request-ID`` UUID and an ``X-Correlation-ID``, and answers the PDS sandbox's published example
patients (``/work/shared/spec/nhs/pds-sandbox``) and any ``add``-ed record; a superseded number answers
the current record. ``mode``: ``"slow"`` (answers after ``delay`` seconds), ``"down"`` (503), ``"garbage"``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from safeguarding.domain.patients import Patient

from .tls_app import serve_tls

EXAMPLES = Path("/work/shared/spec/nhs/pds-sandbox")
CLIENT_ID = "safeguarding-test-app"
KID = "test-1"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
VERIFICATION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"


def resource(patient: Patient) -> dict[str, Any]:
    """A PDS-shaped Patient resource for ``patient``."""
    body: dict[str, Any] = {
        "resourceType": "Patient", "id": patient.nhs_number,
        "meta": {"versionId": "1", "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                                "code": patient.security.value}]},
        "identifier": [{"system": NHS, "value": patient.nhs_number, "extension": [{
            "url": VERIFICATION, "valueCodeableConcept": {"coding": [{
                "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatus",
                "code": "01" if patient.verified else "02"}]}}]}],
    }
    if patient.gender is not None:
        body["gender"] = patient.gender.value
    if patient.birth_date is not None:
        body["birthDate"] = patient.birth_date.isoformat()
    if patient.deceased:
        body["deceasedDateTime"] = f"{date.today().isoformat()}T00:00:00+00:00"
    if patient.gp_ods_code:
        body["generalPractitioner"] = [{"type": "Organization", "identifier": {
            "system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": patient.gp_ods_code}}]
    return body


@dataclass
class PdsServer:
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537,
                                                                                      key_size=2048))
    mode: str | None = None
    delay: float = 10.0
    base: str = ""
    ca: Path | None = None
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    superseded: dict[str, str] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    refusals: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    jtis: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for path in sorted(EXAMPLES.glob("patient_*.json")):
            record = json.loads(path.read_text())
            self.records[record["id"]] = record

    @property
    def url(self) -> str:
        return f"{self.base}/FHIR/R4"

    @property
    def token_url(self) -> str:
        return f"{self.base}/oauth2/token"

    def add(self, patient: Patient) -> str:
        if patient.superseded_by:
            self.superseded[patient.nhs_number] = patient.superseded_by
        else:
            self.records[patient.nhs_number] = resource(patient)
        return patient.nhs_number

    def write_key(self, path: Path) -> Path:
        path.write_bytes(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
        return path

    def _refuse(self, why: str, status: int = 401) -> Response:
        self.refusals.append(why)
        return JSONResponse({"error": "invalid_request", "error_description": why}, status)

    def app(self) -> Starlette:
        pds = self

        async def token(request: Request) -> Response:
            pds.hits["token"] += 1
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != \
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                return pds._refuse("grant", 400)
            assertion = str(form.get("client_assertion", ""))
            try:
                header = jwt.get_unverified_header(assertion)
                claims = jwt.decode(assertion, pds.key.public_key(), algorithms=["RS512"], audience=pds.token_url,
                                    issuer=CLIENT_ID, options={"require": ["exp", "jti", "sub", "iss", "aud"]})
            except jwt.PyJWTError as exc:
                return pds._refuse(f"assertion: {type(exc).__name__}")
            if header.get("kid") != KID or claims["sub"] != CLIENT_ID or claims["jti"] in pds.jtis \
                    or claims["exp"] > time.time() + 300:
                return pds._refuse("assertion claims")
            pds.jtis.add(claims["jti"])
            access = secrets.token_urlsafe(24)
            pds.tokens.add(access)
            return JSONResponse({"access_token": access, "expires_in": "599", "token_type": "Bearer"})

        async def patient(request: Request) -> Response:
            pds.hits["patient"] += 1
            if request.headers.get("authorization", "").removeprefix("Bearer ") not in pds.tokens:
                return pds._refuse("access token")
            try:
                uuid.UUID(request.headers.get("x-request-id", ""))
            except ValueError:
                return pds._refuse("X-Request-ID", 400)
            if not request.headers.get("x-correlation-id"):
                return pds._refuse("X-Correlation-ID", 400)
            if pds.mode == "slow":
                await asyncio.sleep(pds.delay)
            if pds.mode == "down":
                return JSONResponse({"resourceType": "OperationOutcome"}, 503)
            if pds.mode == "garbage":
                return Response(b"<html>gateway error</html>", 200, media_type="text/html")
            number = request.path_params["id"]
            record = pds.records.get(pds.superseded.get(number, number))
            if record is None:
                return JSONResponse({"resourceType": "OperationOutcome", "issue": [{
                    "severity": "error", "code": "not_found"}]}, 404, media_type="application/fhir+json")
            return JSONResponse(record, 200, media_type="application/fhir+json",
                                headers={"X-Request-ID": request.headers["x-request-id"],
                                         "X-Correlation-ID": request.headers["x-correlation-id"]})

        return Starlette(routes=[Route("/oauth2/token", token, methods=["POST"]),
                                 Route("/FHIR/R4/Patient/{id}", patient)])

    @contextmanager
    def running(self, directory: Path) -> Iterator[PdsServer]:
        with serve_tls(self.app(), directory) as running:
            self.base, self.ca = running.base, running.ca
            yield self
