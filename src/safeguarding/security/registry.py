"""The system registry: accredited systems, their ASIDs, ODS codes, kinds and allowed interactions.

A JSON file operators manage (``systems.json``): a verified client certificate maps to a registered
system by the certificate's SHA-256 fingerprint, or failing that by its subject common name (the
ASID), so a system can renew its certificate from the same CA without re-registering.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from ..domain.caller import System, SystemKind
from .certs import fingerprint


@dataclass(frozen=True)
class Registration:
    system: System
    cert_sha256: str | None = None


class SystemRegistry:
    def __init__(self, registrations: list[Registration]) -> None:
        self._by_asid = {r.system.asid: r for r in registrations}
        self._by_fingerprint = {r.cert_sha256: r for r in registrations if r.cert_sha256}

    @classmethod
    def load(cls, path: Path) -> SystemRegistry:
        if not path.exists():
            return cls([])
        data = json.loads(path.read_text())
        return cls(
            [
                Registration(
                    System(
                        asid=entry["asid"],
                        ods_code=entry["ods"],
                        kind=SystemKind(entry["kind"]),
                        interactions=frozenset(entry.get("interactions", [])),
                    ),
                    entry.get("cert_sha256"),
                )
                for entry in data.get("systems", [])
            ]
        )

    def system_for_certificate(self, der: bytes) -> System | None:
        registration = self._by_fingerprint.get(fingerprint(der))
        if registration is None:
            cert = x509.load_der_x509_certificate(der)
            names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
            candidate = self._by_asid.get(str(names[0].value)) if names else None
            if candidate is not None and candidate.cert_sha256 is None:
                registration = candidate
        return registration.system if registration else None

    def by_asid(self, asid: str) -> System | None:
        registration = self._by_asid.get(asid)
        return registration.system if registration else None


def save_registry(path: Path, entries: list[dict[str, object]]) -> None:
    path.write_text(json.dumps({"systems": entries}, indent=2))
