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
