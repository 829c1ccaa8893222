"""The selected role from an API gateway's header, honoured only from the gateway's addresses: a deployment
whose gateway is this test (127.0.0.1) and one whose gateway is elsewhere (10.0.0.0/8)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import httpx
import pytest

from safeguarding.domain.patients import Gender, Patient

from ..conftest import ARTIFACTS
from ..oidc_provider import AUDIENCE, ROLE, OidcProvider
from ..production_server import Production, production
from ..support import assert_outcome, fresh_nhs_number, years_ago

VIEWER = {**ROLE, "person_roleid": "700000000301", "activity_codes": ["B0370"]}
CLERK = {**ROLE, "person_roleid": "700000000302", "activity_codes": []}


@dataclass
class Setup:
    idp: OidcProvider
    trusted: Production
    elsewhere: Production
    child: str


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("gateway")
    idp = OidcProvider(roles=[VIEWER, CLERK])
    child = fresh_nhs_number()
    patients = [Patient(child, True, years_ago(date.today(), 8), Gender.FEMALE)]
    with idp.running(root / "idp"):
        issuer = f"""
[[trusted_issuers]]
issuer = "{idp.issuer}"
audience = "{AUDIENCE}"
ca_file = "{idp.ca}"
"""
        with production(root / "trusted", issuer + """
[gateway]
addresses = ["127.0.0.1/32"]
role_header = "X-Test-Gateway-Role"
""", ARTIFACTS / "server-gateway-trusted.log", patients) as trusted, \
                production(root / "elsewhere", issuer + """
[gateway]
addresses = ["10.0.0.0/8"]
""", ARTIFACTS / "server-gateway-elsewhere.log", patients) as elsewhere:
            yield Setup(idp, trusted, elsewhere, child)


def _search(server: Production, setup: Setup, **headers: str) -> httpx.Response:
    with server.client() as http:
        return http.get(f"{server.fgm}/Flag", params={"patient:identifier": setup.child},
                        headers={"Authorization": f"Bearer {setup.idp.token()}", **headers})


def _assert_no_role_selected(response: httpx.Response) -> None:
    """Several roles and none selected: refused as a missing head parameter."""
    assert_outcome(response, 400, "PRECONDITION_FAILED", "Missing or invalid head parameter")


def test_the_gateways_header_selects_the_role(setup: Setup) -> None:
    assert _search(setup.trusted, setup, **{"X-Test-Gateway-Role": VIEWER["person_roleid"]}).status_code == 200
    assert _search(setup.trusted, setup, **{"X-Test-Gateway-Role": CLERK["person_roleid"]}).status_code == 403


def test_a_role_header_sent_past_the_gateway_is_not_honoured(setup: Setup) -> None:
    # On the trusted deployment only the configured header counts: NHSD-Session-URID from the client is dropped.
    response = _search(setup.trusted, setup, **{"NHSD-Session-URID": VIEWER["person_roleid"]})
    _assert_no_role_selected(response)


def test_from_an_address_that_is_not_the_gateway_the_header_is_dropped(setup: Setup) -> None:
    response = _search(setup.elsewhere, setup, **{"NHSD-Session-URID": VIEWER["person_roleid"]})
    _assert_no_role_selected(response)
    assert "GATEWAY_HEADER_DROPPED" in setup.elsewhere.log.read_text()
