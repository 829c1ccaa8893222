"""Settings of the web interface: the ``[web]`` table of the TOML configuration (docs/web.md).

    [web]
    session_idle_minutes = 15            # optional
    session_hours = 12                   # optional, absolute lifetime
    persistent_cookie = false            # optional: true gives the session cookie a Max-Age

    [web.oidc]                           # the organisation's OpenID Connect provider (CIS2-shaped)
    issuer = "https://am.nhsidentity.spineservices.nhs.uk:443/openam/oauth2/realms/root/realms/oidc"
    client_id = "..."
    client_secret_file = "oidc-client-secret"
    authorization_endpoint = "https://.../authorize"      # each endpoint optional: left out, it is found
    token_endpoint = "https://.../access_token"            # by OpenID Connect discovery from the issuer
    userinfo_endpoint = "https://.../userinfo"
    jwks_uri = "https://.../connect/jwk_uri"
    redirect_uri = "https://safeguarding.example.nhs.uk/web/oidc/callback"   # optional: public_base_url + path
    scopes = ["openid", "profile", "nationalrbacaccess", "associatedorgs", "selectedrole"]   # optional
    ca_file = "idp-ca.pem"               # optional: CA for the provider's TLS (default: the system's)

Endpoints must be https, except on a loopback address (for tests and local providers): the rule of
``security/jwks.py`` for every provider URL. ``settings`` imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..security.jwks import ProviderError, checked_url

DEFAULT_SCOPES = ("openid", "profile", "nationalrbacaccess", "associatedorgs", "selectedrole")
CALLBACK_PATH = "/web/oidc/callback"


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: bytes = field(repr=False)
    # Each endpoint left out is found by OpenID Connect discovery ({issuer}/.well-known/openid-configuration).
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    jwks_uri: str | None = None
    userinfo_endpoint: str | None = None
    redirect_uri: str | None = None
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    ca_file: Path | None = None

    @property
    def authorization_origin(self) -> str:
        """Where the browser is sent to sign in (the CSP's form-action): the configured authorization endpoint's
        origin, else the issuer's (a discovered endpoint must be on it: ``web/oidc.py``)."""
        parts = urlsplit(self.authorization_endpoint or self.issuer)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class WebSettings:
    oidc: OidcSettings | None = None
    session_idle_minutes: int = 15
    session_hours: int = 12
    persistent_cookie: bool = False  # a Max-Age on the session cookie (kept across browser restarts)


def checked_endpoint(name: str, value: object) -> str:
    """An endpoint URL: https, or http on a loopback address only (the rule for every provider URL)."""
    try:
        return checked_url(name, value)
    except ProviderError:
        raise ValueError(f"web.oidc.{name} must be an https URL (http only on a loopback address)") from None


def web_settings(raw: Mapping[str, Any] | None, resolve: Callable[[str | None], Path | None]) -> WebSettings:
    """Parse the ``[web]`` table; ``resolve`` makes file names relative to the configuration file."""
    if not raw:
        return WebSettings()
    oidc = None
    section = raw.get("oidc")
    if section:
        secret_file = resolve(section["client_secret_file"])
        if secret_file is None:
            raise ValueError("web.oidc.client_secret_file is required")
        def endpoint(name: str) -> str | None:
            value = section.get(name)
            return checked_endpoint(name, value) if value is not None else None

        redirect = section.get("redirect_uri")
        oidc = OidcSettings(
            issuer=checked_endpoint("issuer", section.get("issuer")),
            client_id=str(section["client_id"]),
            client_secret=secret_file.read_bytes().strip(),
            authorization_endpoint=endpoint("authorization_endpoint"),
            token_endpoint=endpoint("token_endpoint"),
            jwks_uri=endpoint("jwks_uri"),
            userinfo_endpoint=endpoint("userinfo_endpoint"),
            redirect_uri=checked_endpoint("redirect_uri", redirect) if redirect else None,
            scopes=tuple(str(s) for s in section.get("scopes", DEFAULT_SCOPES)),
            ca_file=resolve(section.get("ca_file")),
        )
        if "openid" not in oidc.scopes:
            raise ValueError("web.oidc.scopes must include openid")
    idle = int(raw.get("session_idle_minutes", 15))
    hours = int(raw.get("session_hours", 12))
    if not 1 <= idle <= 120 or not 1 <= hours <= 24:
        raise ValueError("web.session_idle_minutes must be 1-120 and web.session_hours 1-24")
    persistent = raw.get("persistent_cookie", False)
    if not isinstance(persistent, bool):
        raise ValueError("web.persistent_cookie must be true or false")
    return WebSettings(oidc=oidc, session_idle_minutes=idle, session_hours=hours, persistent_cookie=persistent)
