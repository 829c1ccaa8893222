"""Typed settings, validated at start-up: from the sandbox layout of a data dir, or a TOML file and the
environment (config_file.py reads and checks them; docs/example-config.toml shows every key).

A part of the service with settings of its own keeps them in a small block of its own module (like
web/config.py's ``WebSettings`` and ``web_settings(raw, resolve)``): a field of ``Settings`` and one line in
``file_settings`` that hands the hook its table (``effective.get("name")``, environment variables merged in).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from .api.errors import DEFAULT_ERROR_SYSTEM
from .config_file import SettingsError as SettingsError
from .config_file import load, read_toml, where
from .pds.settings import PdsSettings
from .proxy import ProxySettings, proxy_settings
from .security.gateway import GatewaySettings
from .security.tokens import TrustedIssuer
from .store.sql import sqlite_url
from .web.config import WebSettings, web_settings

SANDBOX_ISSUER = "https://sandbox.safeguarding.invalid/issuer"
SANDBOX_AUDIENCE = "https://sandbox.safeguarding.invalid/api"
SANDBOX_SERVICE_ASID = "990101234567"
DEFAULT_DATA_DIR = Path(".safeguarding")
DATABASE_URL_ENV = "SAFEGUARDING_DATABASE_URL"


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
    def audit_spool(self) -> Path:
        return self.root / "audit-spool"

    @property
    def audit_checkpoints(self) -> Path:
        return self.root / "audit-checkpoints.log"

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
    log_format: str = "auto"
    proxy: ProxySettings = field(default_factory=ProxySettings)
    web: WebSettings = field(default_factory=WebSettings)
    audit_checkpoint_file: Path | None = None  # None: audit-checkpoints.log in the data dir
    pds: PdsSettings | None = None  # None: demographics from the local table
    gateway: GatewaySettings | None = None  # None: the role header from anyone, as a choice among the user's

    @property
    def layout(self) -> Layout:
        return Layout(self.data_dir)

    @property
    def shared_registry_url(self) -> str | None:
        """The database that holds the system registry, shared by every node: PostgreSQL outside the sandbox
        (security/registry.py). The sandbox keeps its file (it rewrites its own systems at every start)."""
        return self.database_url if not self.sandbox and self.database_url.startswith("postgresql") else None

    @property
    def audit_checkpoints(self) -> Path:
        """Where the audit chain's checkpoints are appended (audit/checkpoints.py)."""
        return self.audit_checkpoint_file or self.layout.audit_checkpoints

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def base_url(self) -> str:
        return self.public_base_url or f"{self.scheme}://{self.host}:{self.port}"


def database_url_for(data_dir: Path, explicit: str | None) -> str:
    """--database-url, else SAFEGUARDING_DATABASE_URL, else the file SAFEGUARDING_DATABASE_URL_FILE names, else
    SQLite in the data dir."""
    return explicit or os.environ.get(DATABASE_URL_ENV) or _from_file(DATABASE_URL_ENV + "_FILE") or \
        sqlite_url(Layout(data_dir).database.resolve())


def _from_file(variable: str) -> str | None:
    name = os.environ.get(variable)
    if not name:
        return None
    try:
        return Path(name).read_text().strip()
    except OSError as exc:
        raise SettingsError(f"{variable} names {name}, which cannot be read ({exc.strerror}): give a readable "
                            "file") from exc


def sandbox_settings(data_dir: Path, *, host: str = "127.0.0.1", port: int = 8443,
                     database_url: str | None = None, log_format: str = "auto") -> Settings:
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
        log_format=log_format,
    )


def file_settings(path: Path | None, *, host: str | None = None, port: int | None = None,
                  database_url: str | None = None) -> Settings:
    """Production settings: everything explicit, nothing generated. From the TOML file at ``path`` with the
    environment's ``SAFEGUARDING_*`` variables over it, or (``path`` None) from the environment alone."""
    source = where(path)
    raw = read_toml(path) if path is not None else {}
    config = load(raw, source)
    base = path.parent.resolve() if path is not None else Path.cwd()

    def resolve(value: str | None) -> Path | None:
        return (base / value).resolve() if value else None

    effective = config.model_dump()  # the file's tables with the environment merged in, for the hooks below
    try:
        data_dir = resolve(config.data_dir) or base
        issuers = tuple(TrustedIssuer(i.issuer, i.audience, jwks_file=str(resolve(i.jwks_file)) if i.jwks_file
                                      else None, jwks_url=i.jwks_url,
                                      ca_file=str(resolve(i.ca_file)) if i.ca_file else None, roles=i.roles,
                                      userinfo_url=i.userinfo_url) for i in config.trusted_issuers)
        audit_key_file = resolve(config.audit_key_file) or base
        try:
            audit_key = Secret(audit_key_file.read_bytes())
        except OSError as exc:
            raise SettingsError(f"{source}: the setting audit_key_file names {audit_key_file}, which cannot be read "
                                f"({exc.strerror}): create it (32 random bytes or more) or correct the path") from exc
        settings = Settings(
            data_dir=data_dir,
            database_url=database_url or config.database_url,
            audit_key=audit_key,
            trusted_issuers=issuers,
            registry_file=resolve(config.systems_file) or base / "systems.json",
            service_asid=config.service_asid,
            tls_cert=resolve(config.tls.cert),
            tls_key=resolve(config.tls.key),
            client_ca=resolve(config.tls.client_ca),
            host=host or config.host,
            port=port or config.port,
            public_base_url=config.public_base_url,
            error_system=config.error_system,
            log_level=config.log_level,
            log_format=config.log_format,
            proxy=proxy_settings(config.proxy),
            web=web_settings(effective.get("web"), resolve),
            audit_checkpoint_file=resolve(config.audit_checkpoint_file),
            pds=PdsSettings(config.pds.url, config.pds.token_url, config.pds.client_id,
                            resolve(config.pds.key_file) or base, config.pds.kid, config.pds.timeout_seconds,
                            config.pds.cache_seconds, resolve(config.pds.ca_file)) if config.pds else None,
            gateway=GatewaySettings(tuple(ipaddress.ip_network(str(n), strict=False) for n in config.gateway.addresses),
                                    config.gateway.role_header) if config.gateway else None,
        )
    except SettingsError:
        raise
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise SettingsError(f"{source}: {_reason(exc)}: correct the configuration") from exc
    if len(settings.audit_key.value) < 32:
        raise SettingsError(f"{source}: the audit key in {audit_key_file} is shorter than 32 bytes: "
                            "make a longer one (e.g. head -c 32 /dev/urandom)")
    for name, file in (("tls.cert", settings.tls_cert), ("tls.key", settings.tls_key),
                       ("tls.client_ca", settings.client_ca),
                       ("pds.key_file", settings.pds.key_file if settings.pds else None),
                       ("pds.ca_file", settings.pds.ca_file if settings.pds else None)):
        if file is not None and not file.is_file():
            raise SettingsError(f"{source}: the setting {name} names {file}, which does not exist: "
                                "correct the path or create the file")
    return settings


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"the setting {exc.args[0]} is missing"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename} cannot be read ({exc.strerror})"
    return str(exc)
