"""The configuration of trusted issuers, [pds] and [gateway]: what is accepted, and each refusal as one
sentence naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from safeguarding.config_file import SettingsError, load

BASE: dict[str, Any] = {"database_url": "sqlite:///x.db", "audit_key_file": "audit.key",
                        "service_asid": "990101234567"}
ISSUER = {"issuer": "https://idp.example/oidc", "audience": "api"}
PDS = {"url": "https://pds.example/FHIR/R4", "token_url": "https://pds.example/oauth2/token", "client_id": "app",
       "key_file": "pds.pem", "kid": "k1"}


def _load(**tables: Any) -> Any:
    return load({**BASE, "trusted_issuers": [ISSUER], **tables}, "test.toml")


def test_an_issuer_with_neither_key_source_uses_discovery_and_defaults() -> None:
    config = _load()
    issuer = config.trusted_issuers[0]
    assert (issuer.jwks_url, issuer.jwks_file, issuer.roles, issuer.ca_file) == (None, None, "token", None)
    assert config.pds is None and config.gateway is None


@pytest.mark.parametrize(("issuer", "message"), [
    ({"jwks_url": "https://idp.example/jwks", "jwks_file": "jwks.json"}, "give at most one of jwks_file and jwks_url"),
    ({"issuer": "http://idp.example/oidc"}, "issuer must be an https URL"),
    ({"jwks_url": "http://idp.example/jwks"}, "jwks_url must be an https URL"),
    ({"roles": "header"}, "trusted_issuers.0.roles is invalid"),
])
def test_issuer_refusals(issuer: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        _load(trusted_issuers=[{**ISSUER, **issuer}])


def test_pds_table() -> None:
    pds = _load(pds=PDS).pds
    assert (pds.timeout_seconds, pds.cache_seconds) == (5.0, 0.0)  # the cache is off by default
    with pytest.raises(SettingsError, match="pds.url is invalid"):
        _load(pds={**PDS, "url": "http://pds.example/FHIR/R4"})
    with pytest.raises(SettingsError, match="the setting pds.kid is missing"):
        _load(pds={k: v for k, v in PDS.items() if k != "kid"})
    with pytest.raises(SettingsError, match="pds.timeout_seconds is invalid"):
        _load(pds={**PDS, "timeout_seconds": 0})


def test_gateway_table() -> None:
    gateway = _load(gateway={"addresses": ["10.0.0.0/8"]}).gateway
    assert gateway.role_header == "NHSD-Session-URID"
    with pytest.raises(SettingsError, match="gateway.addresses is invalid"):
        _load(gateway={"addresses": []})
