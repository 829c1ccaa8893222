"""The web sign-in's ID-token check uses the API's key handling, against the TLS provider on loopback: the
configured CA only, a rotated key accepted at once, the provider down answered as unavailable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from safeguarding.security.errors import AuthenticationFailed
from safeguarding.security.jwks import KeySetUnavailable
from safeguarding.web.config import OidcSettings
from safeguarding.web.oidc import OidcClient

from ..oidc_provider import OidcProvider

CLIENT = "safeguarding-web"


@pytest.fixture()
def provider(tmp_path: Path) -> Iterator[OidcProvider]:
    with OidcProvider().running(tmp_path / "idp") as running:
        yield running


def _client(provider: OidcProvider) -> OidcClient:
    return OidcClient(OidcSettings(issuer=provider.issuer, client_id=CLIENT, client_secret=b"x",
                                   authorization_endpoint=f"{provider.base}/authorize",
                                   token_endpoint=f"{provider.base}/token", jwks_uri=f"{provider.base}/jwks",
                                   ca_file=provider.ca), "https://127.0.0.1:1")


def test_a_rotated_key_is_accepted_at_once(provider: OidcProvider) -> None:
    client = _client(provider)
    try:
        assert client._verify_id_token(provider.token(aud=CLIENT, nonce="n1"), "n1")["sub"] == "700000000001"
        provider.rotate()
        assert client._verify_id_token(provider.token(aud=CLIENT, nonce="n2"), "n2")["sub"] == "700000000001"
        with pytest.raises(AuthenticationFailed, match="NumericDate"):
            client._verify_id_token(provider.token(aud=CLIENT, nonce="n3", iat="1700000000"), "n3")
        assert provider.hits["jwks"] == 2
    finally:
        client._keys.close()


def test_the_provider_down_is_unavailable(provider: OidcProvider) -> None:
    client = _client(provider)
    provider.mode = "down"
    try:
        with pytest.raises(KeySetUnavailable):
            client._verify_id_token(provider.token(aud=CLIENT, nonce="n"), "n")
    finally:
        client._keys.close()


def test_sign_in_with_endpoints_found_by_discovery(provider: OidcProvider) -> None:
    """Only the issuer configured: the authorization, token, UserInfo and key endpoints come from the
    provider's discovery document (read for the endpoints, and again with the key set, as IssuerKeys does)."""
    client = OidcClient(OidcSettings(issuer=provider.issuer, client_id=CLIENT, client_secret=b"x",
                                     ca_file=provider.ca), "https://127.0.0.1:1")
    try:
        started = client.start()
        assert started.url.startswith(f"{provider.base}/authorize?response_type=code&client_id={CLIENT}&")
        provider.codes["code-1"] = started.nonce
        claims = client.finish("code-1", started.nonce, started.verifier)
        assert claims["sub"] == "700000000001" and claims["nhsid_nrbac_roles"] == provider.roles
        assert claims["nhsid_user_orgs"] == [{"org_code": "RR8", "org_name": "Test Hospital"}]  # from UserInfo
        assert (provider.hits["discovery"], provider.hits["jwks"], provider.hits["token"],
                provider.hits["userinfo"]) == (2, 1, 1, 1)
    finally:
        client._keys.close()


def test_discovery_naming_another_issuer_or_down_is_refused(provider: OidcProvider) -> None:
    client = OidcClient(OidcSettings(issuer=provider.issuer, client_id=CLIENT, client_secret=b"x",
                                     ca_file=provider.ca), "https://127.0.0.1:1")
    try:
        provider.mode = "wrong-issuer"
        with pytest.raises(KeySetUnavailable):
            client.start()
        provider.mode = "down"
        with pytest.raises(KeySetUnavailable):
            client.start()
    finally:
        client._keys.close()
