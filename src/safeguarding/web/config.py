"""Settings of the web interface: the ``[web]`` table of the TOML configuration (docs/web.md).

    [web]
    session_idle_minutes = 15            # optional
    session_hours = 12                   # optional, absolute lifetime
    persistent_cookie = false            # optional: true gives the session cookie a Max-Age

    [web.oidc]                           # the organisation's OpenID Connect provider (CIS2-shaped)
    issuer = "https://am.nhsidentity.spineservices.nhs.uk:443/openam/oauth2/realms/root/realms/oidc"
    client_id = "..."
    client_secret_file = "oidc-client-secret"
    authorization_endpoint = "https://.../authorize"
    token_endpoint = "https://.../access_token"
    userinfo_endpoint = "https://.../userinfo"
    jwks_uri = "https://.../connect/jwk_uri"
    redirect_uri = "https://safeguarding.example.nhs.uk/web/oidc/callback"   # optional: public_base_url + path
    scopes = ["openid", "profile", "nationalrbacaccess", "associatedorgs", "selectedrole"]   # optional
    ca_file = "idp-ca.pem"               # optional: CA for the provider's TLS (default: the system's)

Endpoints must be https, except on a loopback address (for tests and local providers).
This module imports nothing from the rest of the package: ``settings`` imports it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_SCOPES = ("openid", "profile", "nationalrbacaccess", "associatedorgs", "selectedrole")
CALLBACK_PATH = "/web/oidc/callback"


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: bytes = field(repr=False)
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    redirect_uri: str | None = None
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    ca_file: Path | None = None

    @property
    def authorization_origin(self) -> str:
        parts = urlsplit(self.authorization_endpoint)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class WebSettings:
    oidc: OidcSettings | None = None
    session_idle_minutes: int = 15
    session_hours: int = 12
    persistent_cookie: bool = False  # a Max-Age on the session cookie (kept across browser restarts)


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_endpoint(name: str, value: object) -> str:
    """An endpoint URL: https, or http on a loopback address only."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"web.oidc.{name} must be a URL")
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return value
    raise ValueError(f"web.oidc.{name} must be an https URL (http only on a loopback address)")


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
        userinfo = section.get("userinfo_endpoint")
        redirect = section.get("redirect_uri")
        oidc = OidcSettings(
            issuer=str(section["issuer"]),
            client_id=str(section["client_id"]),
            client_secret=secret_file.read_bytes().strip(),
            authorization_endpoint=checked_endpoint("authorization_endpoint", section["authorization_endpoint"]),
            token_endpoint=checked_endpoint("token_endpoint", section["token_endpoint"]),
            jwks_uri=checked_endpoint("jwks_uri", section["jwks_uri"]),
            userinfo_endpoint=checked_endpoint("userinfo_endpoint", userinfo) if userinfo else None,
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
