"""The configuration file's schema, read with pydantic-settings (docs/operations.md, docs/example-config.toml).

Where a value comes from, strongest first:

1. the command line (``--host``, ``--port``, ``--database-url``), applied by ``settings.file_settings``;
2. an environment variable ``SAFEGUARDING_<NAME>``, nested tables with ``__`` (``SAFEGUARDING_TLS__CERT``);
   lists as JSON (``SAFEGUARDING_PROXY__TRUSTED='["10.0.0.0/8"]'``);
3. ``SAFEGUARDING_<NAME>_FILE`` for a top-level setting: the value is the content of that file (a container
   secret), e.g. ``SAFEGUARDING_DATABASE_URL_FILE=/run/secrets/database-url``;
4. the TOML file (if any).

Tables this module does not declare (other parts' own blocks, like ``[web]``) are kept as they are, with
their environment variables merged in, and handed to their own parse hooks by ``settings``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .api.errors import DEFAULT_ERROR_SYSTEM

ENV_PREFIX = "SAFEGUARDING_"
NESTED = "__"
FILE_SUFFIX = "_FILE"


class SettingsError(ValueError):
    """One readable sentence: what is wrong, with which key, in which file, and what to do."""


ConfigError = SettingsError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Strict):
    cert: str | None = None
    key: str | None = None
    client_ca: str | None = None


class IssuerConfig(_Strict):
    """Keys from ``jwks_file``, ``jwks_url``, or (neither) OpenID Connect discovery from ``issuer``."""

    issuer: str
    audience: str
    jwks_file: str | None = None
    jwks_url: str | None = None
    ca_file: str | None = None
    roles: Literal["token", "userinfo"] = "token"
    userinfo_url: str | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> IssuerConfig:
        if self.jwks_file and self.jwks_url:
            raise ValueError("give at most one of jwks_file and jwks_url (neither: OpenID Connect discovery)")
        for name, url in (("jwks_url", self.jwks_url), ("userinfo_url", self.userinfo_url),
                          ("issuer", None if self.jwks_file or self.jwks_url else self.issuer)):
            if url is not None and not _secure_url(url):
                raise ValueError(f"{name} must be an https URL (http only on a loopback address)")
        return self


def _secure_url(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.hostname) and (parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")))


class PdsConfig(_Strict):
    """The Personal Demographics Service (docs/operations.md "PDS"); without this table, the local table."""

    url: str
    token_url: str
    client_id: str
    key_file: str
    kid: str
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    cache_seconds: float = Field(0.0, ge=0, le=3600)
    ca_file: str | None = None

    @field_validator("url", "token_url")
    @classmethod
    def _secure(cls, url: str) -> str:
        if not _secure_url(url):
            raise ValueError("must be an https URL (http only on a loopback address)")
        return url


class GatewayConfig(_Strict):
    """An API gateway passing the user's selected role in a header (docs/operations.md)."""

    addresses: tuple[IPvAnyNetwork, ...] = Field(min_length=1)
    role_header: str = Field("NHSD-Session-URID", pattern=r"^[A-Za-z0-9-]+$")


class ProxyConfig(_Strict):
    trusted: tuple[IPvAnyNetwork, ...] = ()
    client_cert_header: str = "x-ssl-client-cert"


class ConfigFile(BaseSettings):
    """Every key of the TOML file; see docs/example-config.toml for what each means."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED, extra="allow",
                                      case_sensitive=False, frozen=True)

    data_dir: str = "."
    database_url: str
    audit_key_file: str
    audit_checkpoint_file: str | None = None
    service_asid: str = Field(pattern=r"^\d{12}$")
    trusted_issuers: tuple[IssuerConfig, ...] = Field(min_length=1)
    systems_file: str = "systems.json"
    public_base_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8443, ge=1, le=65535)
    error_system: str = DEFAULT_ERROR_SYSTEM
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    tls: TlsConfig = TlsConfig()
    proxy: ProxyConfig = ProxyConfig()
    pds: PdsConfig | None = None
    gateway: GatewayConfig | None = None
    web: dict[str, Any] = {}

    @model_validator(mode="after")
    def _blocks_are_tables(self) -> ConfigFile:
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, dict):
                raise ValueError(f"unknown setting {name!r}")
        if (self.tls.cert is None) != (self.tls.key is None):
            raise ValueError("tls.cert and tls.key go together")
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init_settings is the TOML file's content: the weakest source.
        return env_settings, _UndeclaredTables(settings_cls), _ValueFiles(settings_cls), init_settings


def _env() -> dict[str, str]:
    return {k.upper(): v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}


def _declared(name: str) -> bool:
    return name in ConfigFile.model_fields


def _deep_set(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        nested = target.get(part)
        target = target.setdefault(part, {}) if isinstance(nested, dict) or nested is None else {}
    target[path[-1]] = value


class _ValueFiles(PydanticBaseSettingsSource):
    """``SAFEGUARDING_<NAME>_FILE``: the setting's value read from a file (its content, stripped)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole dict

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, file in _env().items():
            if not name.endswith(FILE_SUFFIX):
                continue
            key = name[len(ENV_PREFIX):-len(FILE_SUFFIX)].lower()
            # Top-level settings only, and not those that name a file already: SAFEGUARDING_AUDIT_KEY_FILE is the
            # setting audit_key_file itself, as SAFEGUARDING_WEB__OIDC__CLIENT_SECRET_FILE is web.oidc's
            # client_secret_file (tables keep their own *_file keys).
            if NESTED in key or not _declared(key) or _declared(key + "_file"):
                continue
            path = [key]
            try:
                content = Path(file).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{name} names {file}, which cannot be read ({exc.strerror}): "
                                  "give a readable file") from exc
            _deep_set(values, path, content)
        return values


class _UndeclaredTables(PydanticBaseSettingsSource):
    """``SAFEGUARDING_<TABLE>__<KEY>`` for tables other parts declare themselves (kept as text)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, value in _env().items():
            path = name[len(ENV_PREFIX):].lower().split(NESTED)
            if len(path) > 1 and not _declared(path[0]) and not name.endswith(FILE_SUFFIX):
                _deep_set(values, path, value)
        return values


def env_name(key: str) -> str:
    """The environment variable that sets a dotted key (``tls.cert`` -> ``SAFEGUARDING_TLS__CERT``); within a
    list, the whole list's variable (``trusted_issuers.0.audience`` -> ``SAFEGUARDING_TRUSTED_ISSUERS``, JSON)."""
    parts = key.split(".")
    for index, part in enumerate(parts):
        if part.isdigit():
            parts = parts[:index]
            break
    return ENV_PREFIX + NESTED.join(parts).upper()


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}): correct the file") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text: save it as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path} ({exc.strerror})") from exc


def load(raw: Mapping[str, Any], source: str) -> ConfigFile:
    """The file's content with the environment applied, validated; ``source`` names it in errors."""
    try:
        return ConfigFile(**raw)
    except ValidationError as exc:
        raise ConfigError(describe(exc, source)) from None


def describe(exc: ValidationError, source: str) -> str:
    """A validation error as one sentence naming the key, the file and the variable that can set it."""
    error = exc.errors(include_url=False)[0]
    key = ".".join(str(part) for part in error["loc"]) or "(the file)"
    if error["type"] == "missing":
        return f"{source}: the setting {key} is missing: add it to the file or set {env_name(key)}"
    if error["type"] == "extra_forbidden":
        return f"{source}: {key} is not a known setting: remove it or correct its name (docs/example-config.toml)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return f"{source}: {message}: correct the file (docs/example-config.toml shows every setting)"
    # The value itself is not repeated: it may be a secret.
    return f"{source}: the setting {key} is invalid ({message}): correct it in the file or in {env_name(key)}"


def env_only() -> bool:
    """The environment alone configures the service (no file): SAFEGUARDING_SERVICE_ASID is set."""
    return "SAFEGUARDING_SERVICE_ASID" in _env()


def where(path: Path | None) -> str:
    return str(path) if path is not None else "the environment (SAFEGUARDING_*)"


__all__ = ["ConfigError", "ConfigFile", "ProxyConfig", "SettingsError", "env_name", "env_only", "load", "read_toml",
           "where"]
