"""The ``[pds]`` table: where PDS is, and this service's application credentials for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PdsSettings:
    url: str  # the PDS FHIR R4 base, e.g. https://api.service.nhs.uk/personal-demographics/FHIR/R4
    token_url: str  # the OAuth 2.0 token endpoint, e.g. https://api.service.nhs.uk/oauth2/token
    client_id: str  # this application's API key at the NHS API Platform
    key_file: Path  # the RSA private key (PEM) whose public half the platform holds under ``kid``
    kid: str
    timeout_seconds: float = 5.0  # the whole look-up, token included, must finish within this
    cache_seconds: float = 0.0  # keep answers this long in memory (0: off)
    ca_file: Path | None = None  # trust only this CA for PDS's TLS (default: the system's store)
