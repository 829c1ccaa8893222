"""A deployment trusting CIS2-shaped issuers by OpenID Connect discovery, over real HTTPS: tokens verify,
a rotated key is accepted at once, and an issuer whose keys cannot be had makes a 503 with Retry-After
and a coded log line, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest

from safeguarding.domain.patients import Gender, Patient

from ..conftest import ARTIFACTS
from ..oidc_provider import AUDIENCE, OidcProvider
from ..production_server import Production, production
from ..support import assert_outcome, fresh_nhs_number, years_ago


@dataclass
class Deployment:
    server: Production
    good: OidcProvider
    down: OidcProvider
    liar: OidcProvider
    child: str


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("cis2")
    good, down, liar = OidcProvider(), OidcProvider(mode="down"), OidcProvider(mode="wrong-issuer")
    with good.running(root / "good"), down.running(root / "down"), liar.running(root / "liar"):
        issuers = "".join(f"""
[[trusted_issuers]]
issuer = "{p.issuer}"
audience = "{AUDIENCE}"
ca_file = "{p.ca}"
""" for p in (good, down, liar))
        child = fresh_nhs_number()
        with production(root / "service", issuers, ARTIFACTS / "server-cis2.log",
                        [Patient(child, True, years_ago(date.today(), 8), Gender.FEMALE)]) as server:
            yield Deployment(server, good, down, liar, child)


def _search(deployment: Deployment, token: str) -> httpx.Response:
    with deployment.server.client() as http:
        return http.get(f"{deployment.server.fgm}/Flag", params={"patient:identifier": deployment.child},
                        headers={"Authorization": f"Bearer {token}"})


def test_a_token_from_a_discovered_issuer_is_accepted_and_a_rotated_key_at_once(deployment: Deployment) -> None:
    response = _search(deployment, deployment.good.token())
    assert response.status_code == 200, response.text
    deployment.good.rotate()
    response = _search(deployment, deployment.good.token(jti="after-rotation"))
    assert response.status_code == 200, response.text


def test_an_issuer_that_is_down_makes_a_503_with_retry_after_and_a_coded_log_line(deployment: Deployment) -> None:
    response = _search(deployment, deployment.down.token())
    assert_outcome(response, 503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable",
                   issue_type="transient")
    assert response.headers["retry-after"] == "5"
    log = Path(deployment.server.log).read_text()
    assert "ISSUER_KEYS_UNAVAILABLE" in log and "answered 503" in log


def test_discovery_naming_another_issuer_makes_a_503(deployment: Deployment) -> None:
    response = _search(deployment, deployment.liar.token())
    assert response.status_code == 503
    assert "discovery document names another issuer" in Path(deployment.server.log).read_text()


def test_a_numeric_string_exp_is_refused(deployment: Deployment) -> None:
    response = _search(deployment, deployment.good.token(exp="9999999999"))
    assert response.status_code == 401
