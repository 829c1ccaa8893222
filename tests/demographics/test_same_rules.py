"""The FGM-IS rules (gender, age, verification, sensitivity) and CP-IS look-ups answer the same whether the
demographics are the local table or PDS: two production-style deployments, one with the patients loaded
locally and one reading them from a PDS-shaped server, asked the same questions over real HTTPS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import httpx
import pytest

from safeguarding.demographics import patient_from_pds
from safeguarding.domain.patients import Gender, Patient, SecurityLabel

from ..conftest import ARTIFACTS
from ..oidc_provider import AUDIENCE, ROLE, OidcProvider
from ..pds_server import CLIENT_ID, EXAMPLES, KID, PdsServer
from ..production_server import Production, production
from ..support import fresh_nhs_number, years_ago

TODAY = date.today()


def _kinds() -> dict[str, Patient]:
    def girl(**changes: object) -> Patient:
        fields: dict[str, object] = dict(nhs_number=fresh_nhs_number(), verified=True,
                                         birth_date=years_ago(TODAY, 10, 30), gender=Gender.FEMALE,
                                         gp_ods_code="Y12345")
        fields.update(changes)
        return Patient(**fields)  # type: ignore[arg-type]

    current = girl()
    kinds = {
        "girl": girl(), "male": girl(gender=Gender.MALE), "unknown-gender": girl(gender=Gender.UNKNOWN),
        "indeterminate": girl(gender=Gender.OTHER), "adult": girl(birth_date=years_ago(TODAY, 18)),
        "seventeen": girl(birth_date=years_ago(TODAY, 17, 300)), "unverified": girl(verified=False),
        "restricted": girl(security=SecurityLabel.RESTRICTED), "very-restricted": girl(
            security=SecurityLabel.VERY_RESTRICTED), "current": current,
        "superseded": Patient(fresh_nhs_number(), True, None, None, superseded_by=current.nhs_number),
        "pds-sandbox-restricted": patient_from_pds(json.loads((EXAMPLES / "patient_9000000025.json").read_text())),
        "pds-sandbox-deceased": patient_from_pds(json.loads((EXAMPLES / "patient_9000000009.json").read_text())),
    }
    return kinds


KINDS = _kinds()
MISSING = "9111231130"  # valid check digit, on neither


@dataclass
class Deployments:
    idp: OidcProvider
    pds: PdsServer
    local: Production
    remote: Production


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployments]:
    root = tmp_path_factory.mktemp("same-rules")
    idp = OidcProvider(roles=[{**ROLE, "activity_codes": ["B0370", "B0380", "B0107"]}])
    pds = PdsServer()
    with idp.running(root / "idp"), pds.running(root / "pds"):
        for patient in KINDS.values():
            if patient.nhs_number not in pds.records:
                pds.add(patient)
        issuer = f"""
[[trusted_issuers]]
issuer = "{idp.issuer}"
audience = "{AUDIENCE}"
ca_file = "{idp.ca}"
"""
        key = pds.write_key(root / "pds-key.pem")
        with production(root / "local", issuer, ARTIFACTS / "server-demographics-local.log",
                        KINDS.values()) as local, \
                production(root / "remote", issuer + f"""
[pds]
url = "{pds.url}"
token_url = "{pds.token_url}"
client_id = "{CLIENT_ID}"
key_file = "{key}"
kid = "{KID}"
ca_file = "{pds.ca}"
timeout_seconds = 2
""", ARTIFACTS / "server-demographics-pds.log") as remote:
            yield Deployments(idp, pds, local, remote)


def _answer(server: Production, idp: OidcProvider, url: str, nhs: str) -> tuple[int, str | None]:
    with server.client() as http:
        response = http.get(url.format(server=server), params={"patient:identifier": nhs},
                            headers={"Authorization": f"Bearer {idp.token()}"})
    code = None
    if response.status_code != 200:
        code = response.json()["issue"][0]["details"]["coding"][0]["code"]
    return response.status_code, code


FGM = "{server.fgm}/Flag"
CPIS = "{server.cpis}/CareTeam"


@pytest.mark.parametrize("kind", [*KINDS, "missing"])
@pytest.mark.parametrize("url", [FGM, CPIS], ids=["fgm-search", "cpis-careteam"])
def test_the_same_answer_from_pds_as_from_the_local_table(deployments: Deployments, kind: str, url: str) -> None:
    nhs = MISSING if kind == "missing" else KINDS[kind].nhs_number
    local = _answer(deployments.local, deployments.idp, url, nhs)
    remote = _answer(deployments.remote, deployments.idp, url, nhs)
    assert remote == local
    if kind == "girl":
        assert local == (200, None)
    if kind in ("unverified", "missing") and url == FGM:  # not traced; a male may be searched (v2.2)
        assert local[0] == 400
    assert deployments.pds.refusals == []


def test_pds_down_is_service_unavailable_never_a_guess(deployments: Deployments) -> None:
    deployments.pds.mode = "down"
    try:
        with deployments.remote.client() as http:
            response = http.get(f"{deployments.remote.fgm}/Flag",
                                params={"patient:identifier": KINDS["girl"].nhs_number},
                                headers={"Authorization": f"Bearer {deployments.idp.token()}"})
    finally:
        deployments.pds.mode = None
    assert response.status_code == 503
    assert response.json()["issue"][0]["details"]["coding"][0]["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["retry-after"] == "5"
    log = deployments.remote.log.read_text()
    assert "PDS_UNAVAILABLE" in log and KINDS["girl"].nhs_number not in log


def test_pds_slow_is_service_unavailable_within_the_deadline(deployments: Deployments) -> None:
    deployments.pds.mode, deployments.pds.delay = "slow", 8.0
    try:
        with deployments.remote.client() as http:
            response = http.get(f"{deployments.remote.fgm}/Flag",
                                params={"patient:identifier": KINDS["girl"].nhs_number},
                                headers={"Authorization": f"Bearer {deployments.idp.token()}"},
                                timeout=httpx.Timeout(7.0))
    finally:
        deployments.pds.mode = None
    assert response.status_code == 503  # timeout_seconds = 2, well before the client's 7 s


def test_neither_log_holds_an_nhs_number_or_a_token(deployments: Deployments) -> None:
    for server in (deployments.local, deployments.remote):
        text = server.log.read_text()
        assert "REQUEST_COMPLETED" in text
        assert [p.nhs_number for p in KINDS.values() if p.nhs_number in text] == []
        assert MISSING not in text and "eyJ" not in text
