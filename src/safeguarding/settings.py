"""Typed settings, validated at start-up: from the sandbox layout of a data dir, or a TOML file."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .api.errors import DEFAULT_ERROR_SYSTEM
from .security.tokens import TrustedIssuer
from .store.sql import sqlite_url
from .web.config import WebSettings, web_settings

SANDBOX_ISSUER = "https://sandbox.safeguarding.invalid/issuer"
SANDBOX_AUDIENCE = "https://sandbox.safeguarding.invalid/api"
SANDBOX_SERVICE_ASID = "990101234567"
DEFAULT_DATA_DIR = Path(".safeguarding")
DATABASE_URL_ENV = "SAFEGUARDING_DATABASE_URL"


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Secret:
    """A secret value that never prints."""

    value: bytes = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclass(frozen=True)
class Layout:
    """Where things live in a data dir."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "safeguarding.db"

    @property
    def audit_key(self) -> Path:
        return self.root / "audit.key"

    @property
    def signing_key(self) -> Path:
        return self.root / "keys" / "token-signing.pem"

    @property
    def jwks(self) -> Path:
        return self.root / "keys" / "jwks.json"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def systems(self) -> Path:
        return self.root / "systems"

    @property
    def registry(self) -> Path:
        return self.root / "systems.json"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    audit_key: Secret
    trusted_issuers: tuple[TrustedIssuer, ...]
    registry_file: Path
    service_asid: str
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8443
    sandbox: bool = False
    public_base_url: str | None = None
    error_system: str = DEFAULT_ERROR_SYSTEM
    log_level: str = "INFO"
    web: WebSettings = field(default_factory=WebSettings)

    @property
    def layout(self) -> Layout:
        return Layout(self.data_dir)

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def base_url(self) -> str:
        return self.public_base_url or f"{self.scheme}://{self.host}:{self.port}"


def database_url_for(data_dir: Path, explicit: str | None) -> str:
    return explicit or os.environ.get(DATABASE_URL_ENV) or sqlite_url(Layout(data_dir).database.resolve())


def sandbox_settings(data_dir: Path, *, host: str = "127.0.0.1", port: int = 8443,
                     database_url: str | None = None) -> Settings:
    layout = Layout(data_dir.resolve())
    return Settings(
        data_dir=layout.root,
        database_url=database_url_for(layout.root, database_url),
        audit_key=Secret(layout.audit_key.read_bytes()),
        trusted_issuers=(TrustedIssuer(SANDBOX_ISSUER, SANDBOX_AUDIENCE, jwks_file=str(layout.jwks)),),
        registry_file=layout.registry,
        service_asid=SANDBOX_SERVICE_ASID,
        tls_cert=layout.tls / "server.pem",
        tls_key=layout.tls / "server.key",
        client_ca=layout.tls / "ca.pem",
        host=host,
        port=port,
        sandbox=True,
    )


def file_settings(path: Path, *, host: str | None = None, port: int | None = None,
                  database_url: str | None = None) -> Settings:
    """Production settings: everything explicit, nothing generated."""
    raw = tomllib.loads(path.read_text())
    base = path.parent

    def resolve(value: str | None) -> Path | None:
        return (base / value).resolve() if value else None

    try:
        data_dir = resolve(raw.get("data_dir", ".")) or base
        issuers = tuple(
            TrustedIssuer(i["issuer"], i["audience"], jwks_file=str(resolve(i.get("jwks_file"))) if i.get("jwks_file")
                          else None, jwks_url=i.get("jwks_url"))
            for i in raw["trusted_issuers"]
        )
        audit_key_file = resolve(raw["audit_key_file"])
        if audit_key_file is None:
            raise SettingsError("audit_key_file is required")
        tls = raw.get("tls", {})
        settings = Settings(
            data_dir=data_dir,
            database_url=database_url or os.environ.get(DATABASE_URL_ENV) or raw["database_url"],
            audit_key=Secret(audit_key_file.read_bytes()),
            trusted_issuers=issuers,
            registry_file=resolve(raw.get("systems_file", "systems.json")) or base / "systems.json",
            service_asid=raw["service_asid"],
            tls_cert=resolve(tls.get("cert")),
            tls_key=resolve(tls.get("key")),
            client_ca=resolve(tls.get("client_ca")),
            host=host or raw.get("host", "127.0.0.1"),
            port=port or int(raw.get("port", 8443)),
            public_base_url=raw.get("public_base_url"),
            error_system=raw.get("error_system", DEFAULT_ERROR_SYSTEM),
            log_level=raw.get("log_level", "INFO"),
            web=web_settings(raw.get("web"), resolve),
        )
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise SettingsError(f"configuration incomplete or unreadable: {exc}") from exc
    if len(settings.audit_key.value) < 32:
        raise SettingsError("the audit key must be at least 32 bytes")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise SettingsError("tls.cert and tls.key go together")
    return settings
