"""An issuer's keys by OpenID Connect discovery, against a real provider on loopback over TLS: discovery,
key rotation (one rate-limited refetch), the provider down or answering garbage, a discovery document
naming another issuer, TLS trust, and NumericDate claims."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from safeguarding.security.errors import AuthenticationFailed
from safeguarding.security.jwks import IssuerKeys, KeySetUnavailable
from safeguarding.security.tokens import TokenVerifier, TrustedIssuer

from ..oidc_provider import AUDIENCE, ROLE, OidcProvider

_made: list[TokenVerifier] = []


@pytest.fixture()
def provider(tmp_path: Path) -> Iterator[OidcProvider]:
    with OidcProvider().running(tmp_path / "idp") as running:
        yield running
        while _made:
            _made.pop().close()


def _verifier(provider: OidcProvider | None = None, *, issuers: list[TrustedIssuer] | None = None,
              roles: str = "token") -> TokenVerifier:
    if issuers is None:
        assert provider is not None
        issuers = [TrustedIssuer(provider.issuer, AUDIENCE, ca_file=str(provider.ca), roles=roles)]
    verifier = TokenVerifier(issuers)
    _made.append(verifier)
    return verifier


def test_discovery_finds_the_key_set_and_a_token_verifies(provider: OidcProvider) -> None:
    user = _verifier(provider).verify(provider.token())
    assert (user.user_id, user.role_profile_id, user.org_code) == ("700000000001", ROLE["person_roleid"], "RR8")
    assert sorted(user.activities) == ["B0370", "B0380"]
    assert provider.hits["discovery"] == 1 and provider.hits["jwks"] == 1


def test_a_rotated_key_is_accepted_at_once_and_unknown_kids_refetch_at_most_once_in_30_seconds(
        provider: OidcProvider) -> None:
    verifier = _verifier(provider)
    verifier.verify(provider.token())
    provider.rotate()
    user = verifier.verify(provider.token())  # signed with the new key: one refetch, accepted
    assert user.user_id == "700000000001"
    assert provider.hits["jwks"] == 2
    for _ in range(5):
        with pytest.raises(AuthenticationFailed, match="unknown kid"):
            verifier.verify(provider.token(kid=f"forged-{secrets.token_hex(4)}"))
    assert provider.hits["jwks"] == 2  # rate-limited: no fetch per unknown kid


def test_unknown_kid_after_the_interval_refetches_once() -> None:
    keys = IssuerKeys("https://unused.invalid", jwks_url="https://unused.invalid/jwks", refetch_interval=0.0)
    fetches: list[int] = []

    def fetch() -> list:  # type: ignore[type-arg]
        fetches.append(1)
        return []

    keys._fetch = fetch  # type: ignore[method-assign]
    with pytest.raises(AuthenticationFailed, match="unknown kid"):
        keys.key_for("nope")
    assert len(fetches) == 2  # the first fetch, then one refetch for the unknown kid


def test_provider_down_with_nothing_cached_is_unavailable_and_logged(
        provider: OidcProvider, caplog: pytest.LogCaptureFixture) -> None:
    provider.mode = "down"
    token = provider.token()
    with caplog.at_level(logging.WARNING, logger="safeguarding.security.jwks"), \
            pytest.raises(KeySetUnavailable):
        _verifier(provider).verify(token)
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "ISSUER_KEYS_UNAVAILABLE"]
    assert record.issuer == provider.issuer  # type: ignore[attr-defined]
    assert record.reason == "answered 503"  # type: ignore[attr-defined]
    assert token not in caplog.text


def test_a_cached_key_set_keeps_working_while_the_provider_is_down_until_it_expires(provider: OidcProvider) -> None:
    issuer = TrustedIssuer(provider.issuer, AUDIENCE, ca_file=str(provider.ca))
    issuer._keys = IssuerKeys(provider.issuer, ca_file=provider.ca, lifespan=1.0)
    verifier = _verifier(issuers=[issuer])
    verifier.verify(provider.token())
    provider.mode = "down"
    assert verifier.verify(provider.token(jti="second")).user_id == "700000000001"  # cached keys
    provider.rotate()
    with pytest.raises(AuthenticationFailed, match="unknown kid"):  # rotation looked for, provider down
        verifier.verify(provider.token(jti="third"))
    time.sleep(1.2)
    with pytest.raises(KeySetUnavailable):  # the cached set has expired
        verifier.verify(provider.token(jti="fourth"))


def test_garbage_key_set_is_unavailable(provider: OidcProvider, caplog: pytest.LogCaptureFixture) -> None:
    provider.mode = "garbage"
    with caplog.at_level(logging.WARNING), pytest.raises(KeySetUnavailable):
        _verifier(provider).verify(provider.token())
    assert any(getattr(r, "reason", None) == "answer is not JSON" for r in caplog.records)


def test_discovery_naming_another_issuer_is_refused(provider: OidcProvider, caplog: pytest.LogCaptureFixture) -> None:
    provider.mode = "wrong-issuer"
    with caplog.at_level(logging.WARNING), pytest.raises(KeySetUnavailable):
        _verifier(provider).verify(provider.token())
    assert any(getattr(r, "reason", None) == "discovery document names another issuer" for r in caplog.records)
    assert provider.hits["jwks"] == 0


def test_tls_trust_is_the_configured_ca_only(provider: OidcProvider, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from safeguarding.security import certs
    other = certs.create_ca(tmp_path / "other")
    with pytest.raises(KeySetUnavailable):
        _verifier(issuers=[TrustedIssuer(provider.issuer, AUDIENCE, ca_file=str(other.cert))]).verify(provider.token())
    with pytest.raises(KeySetUnavailable):  # the system store does not know the test CA
        _verifier(issuers=[TrustedIssuer(provider.issuer, AUDIENCE)]).verify(provider.token())
    monkeypatch.setenv("SSL_CERT_FILE", str(provider.ca))  # ...unless SSL_CERT_FILE names it
    assert _verifier(issuers=[TrustedIssuer(provider.issuer, AUDIENCE)]).verify(provider.token()).user_id


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["9999999999", True, [1]])
def test_a_claim_that_is_not_a_numeric_date_is_refused(provider: OidcProvider, claim: str, value: object) -> None:
    if claim != "exp" and value == "9999999999":
        value = str(int(time.time()) - 10)
    claims: dict[str, Any] = {claim: value}
    with pytest.raises(AuthenticationFailed):
        _verifier(provider).verify(provider.token(**claims))


def test_roles_from_userinfo(provider: OidcProvider) -> None:
    user = _verifier(provider, roles="userinfo").verify(provider.token(roles=False))
    assert (user.role_profile_id, user.org_name, user.name) == (ROLE["person_roleid"], "Test Hospital",
                                                                "Dr Test Person")
    assert provider.hits["userinfo"] == 1
    verifier = _verifier(provider, roles="userinfo")
    token = provider.token(roles=False, jti="cached")
    verifier.verify(token)
    verifier.verify(token)
    assert provider.hits["userinfo"] == 2  # the answer is kept with the verified token


def test_roles_from_userinfo_about_another_subject_are_refused(provider: OidcProvider) -> None:
    provider.mode = "other-subject"
    with pytest.raises(AuthenticationFailed, match="another subject"):
        _verifier(provider, roles="userinfo").verify(provider.token(roles=False))


def test_userinfo_down_is_unavailable(provider: OidcProvider) -> None:
    verifier = _verifier(provider, roles="userinfo")
    verifier.verify(provider.token(roles=False))
    provider.mode = "down"
    with pytest.raises(KeySetUnavailable):
        verifier.verify(provider.token(roles=False, jti="other"))


def test_an_access_token_from_the_token_endpoint_with_roles_from_userinfo(provider: OidcProvider) -> None:
    import httpx

    from safeguarding.security.jwks import tls_context
    with httpx.Client(verify=tls_context(provider.ca)) as http:
        answer = http.post(f"{provider.base}/token", data={"grant_type": "client_credentials"})
    assert answer.status_code == 200
    access = answer.json()["access_token"]
    with pytest.raises(AuthenticationFailed, match="lacks nhsid_useruid or nhsid_nrbac_roles"):
        _verifier(provider).verify(access)  # roles = "token": this token carries none
    user = _verifier(provider, roles="userinfo").verify(access)
    assert (user.user_id, sorted(user.activities)) == ("700000000001", ["B0370", "B0380"])
