"""SMSP settings, from a TOML file (``safeguarding smsp serve --config FILE``)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..api.dstu2.codes import SpineCode
from ..security.tokens import TrustedIssuer
from ..settings import Secret, SettingsError
from . import vocabulary


@dataclass(frozen=True)
class NationalUser:
    """A local user's national RBAC identity (SDS ids) for FGM-IS queries."""

    sds_user_id: str
    sds_role_profile_id: str


@dataclass(frozen=True)
class SmspSettings:
    data_dir: Path
    database_url: str
    audit_key: Secret
    host: str
    port: int
    tls_cert: Path
    tls_key: Path
    client_ca: Path
    clients_file: Path
    trusted_issuers: tuple[TrustedIssuer, ...]
    users: dict[str, NationalUser]
    smsp_asid: str
    national_url: str
    national_asid: str
    national_ca: Path
    national_cert: Path
    national_key: Path
    timeout_seconds: float = 5.0
    breaker_threshold: int = 3
    breaker_reset_seconds: float = 30.0
    throttle_per_second: float = 20.0
    throttle_burst: int = 40
    # DIGEST A2: FGM data must never be cached (SMSP-FGMRI-003). This exists only because the generic
    # SMSP vocabulary has a 203 "local store" answer; leave it off for FGM-IS.
    local_store_fallback: bool = False
    local_store_hours: float = 24.0
    log_level: str = "INFO"
    # The SMSP's events and the vocabulary rows it answers them with (vocabulary.py; SMSP-CONF-001).
    responses: Mapping[str, SpineCode] = field(default_factory=lambda: vocabulary.DEFAULTS)
    # The files the settings were read from (the TOML, the user mapping): hashed and audited at start-up.
    sources: tuple[Path, ...] = ()


def _users(path: Path) -> dict[str, NationalUser]:
    """``{"users": [{"local_id": "12456", "sds_user_id": "...", "sds_role_profile_id": "...",
    "activities": ["B0370"]}]}``: only users mapped to B0370 may query FGM-IS."""
    entries = json.loads(path.read_text()).get("users", [])
    return {
        entry["local_id"]: NationalUser(entry["sds_user_id"], entry["sds_role_profile_id"])
        for entry in entries
        if "B0370" in entry.get("activities", [])
    }


def load_smsp_settings(path: Path) -> SmspSettings:
    raw = tomllib.loads(path.read_text())
    base = path.parent

    def resolve(value: str) -> Path:
        return (base / value).resolve()

    try:
        tls, national, limits = raw["tls"], raw["national"], raw.get("limits", {})
        data_dir = resolve(raw.get("data_dir", "."))
        hours = float(raw.get("local_store_hours", 24))
        if hours > 24:
            raise SettingsError("local_store_hours may not exceed 24 (FGM client caching limit)")
        return SmspSettings(
            data_dir=data_dir,
            database_url=raw.get("database_url") or f"sqlite:///{data_dir / 'smsp.db'}",
            audit_key=Secret(resolve(raw["audit_key_file"]).read_bytes()),
            host=raw.get("host", "127.0.0.1"),
            port=int(raw.get("port", 9443)),
            tls_cert=resolve(tls["cert"]),
            tls_key=resolve(tls["key"]),
            client_ca=resolve(tls["client_ca"]),
            clients_file=resolve(raw.get("clients_file", "clients.json")),
            trusted_issuers=tuple(
                TrustedIssuer(i["issuer"], i["audience"], jwks_file=str(resolve(i["jwks_file"])) if "jwks_file" in i
                              else None, jwks_url=i.get("jwks_url"))
                for i in raw.get("trusted_issuers", [])
            ),
            users=_users(resolve(raw.get("users_file", "users.json"))),
            smsp_asid=raw["smsp_asid"],
            national_url=national["url"].rstrip("/"),
            national_asid=national["asid"],
            national_ca=resolve(national["ca"]),
            national_cert=resolve(national["cert"]),
            national_key=resolve(national["key"]),
            timeout_seconds=float(national.get("timeout_seconds", 5)),
            breaker_threshold=int(national.get("breaker_threshold", 3)),
            breaker_reset_seconds=float(national.get("breaker_reset_seconds", 30)),
            throttle_per_second=float(limits.get("per_client_per_second", 20)),
            throttle_burst=int(limits.get("per_client_burst", 40)),
            local_store_fallback=bool(raw.get("local_store_fallback", False)),
            local_store_hours=hours,
            log_level=raw.get("log_level", "INFO"),
            responses=vocabulary.responses(raw.get("vocabulary", {})),
            sources=(path.resolve(), resolve(raw.get("users_file", "users.json")),
                     resolve(raw.get("clients_file", "clients.json"))),
        )
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise SettingsError(f"SMSP configuration incomplete or unreadable: {exc}") from exc
