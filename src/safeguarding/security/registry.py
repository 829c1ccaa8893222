"""The system registry: accredited systems, their ASIDs, ODS codes, kinds and allowed interactions.

A JSON file operators manage (``systems.json``): a verified client certificate maps to a registered
system by the certificate's SHA-256 fingerprint, or failing that by its subject common name (the
ASID), so a system can renew its certificate from the same CA without re-registering.

The file's ``revoked`` list is the operator's deny list (``safeguarding systems revoke``): a
certificate named there by SHA-256 fingerprint or serial number belongs to no system, whatever the
registrations say, so a stolen or compromised certificate is refused from the next request on.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from ..domain.caller import System, SystemKind
from .certs import fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    system: System
    cert_sha256: str | None = None


def normalise_fingerprint(value: object) -> str:
    """A SHA-256 fingerprint as lower-case hex without separators (``AB:CD:..`` as openssl prints it)."""
    if not isinstance(value, str):
        raise ValueError("a certificate fingerprint is text")
    text = value.replace(":", "").strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError("a certificate fingerprint is 64 hex digits (SHA-256)")
    return text


def parse_serial(value: object) -> int:
    """A certificate serial number: an integer, or hex as openssl prints it (``1A:2B``, ``0x1a2b``, ``serial=1A2B``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError("a certificate serial number is hex text or an integer")
    text = value.strip().lower().removeprefix("serial=").removeprefix("0x").replace(":", "")
    return int(text, 16)  # ValueError for anything else


class SystemRegistry:
    def __init__(self, registrations: list[Registration], revoked_fingerprints: frozenset[str] = frozenset(),
                 revoked_serials: frozenset[int] = frozenset()) -> None:
        self._by_asid = {r.system.asid: r for r in registrations}
        self._by_fingerprint = {r.cert_sha256: r for r in registrations if r.cert_sha256}
        self._revoked_fingerprints = revoked_fingerprints
        self._revoked_serials = revoked_serials
        self._answers: dict[bytes, System | None] = {}

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
            ],
            # An entry that names neither, or names either badly, makes the whole file unreadable:
            # the server then refuses every system (fail closed) rather than forget a revocation.
            frozenset(normalise_fingerprint(r["cert_sha256"]) for r in _revocations(data) if "cert_sha256" in r),
            frozenset(parse_serial(r["serial"]) for r in _revocations(data) if "serial" in r),
        )

    def is_revoked(self, der: bytes) -> bool:
        """Whether the operator has revoked this certificate (by fingerprint or serial number)."""
        revoked = fingerprint(der) in self._revoked_fingerprints or (
            bool(self._revoked_serials) and x509.load_der_x509_certificate(der).serial_number in self._revoked_serials)
        if revoked:
            log.warning("revoked client certificate refused", extra={"event": "CERTIFICATE_REVOKED"})
        return revoked

    def system_for_certificate(self, der: bytes) -> System | None:
        # A system presents the same certificate on every connection: its answer is kept for as long as
        # this registry is (a change to the file makes a new one, RegistryFile.current).
        # A revoked one is looked at afresh each time, so each refusal is logged (is_revoked).
        if der in self._answers:
            return self._answers[der]
        if self.is_revoked(der):
            return None
        if len(self._answers) >= 1024:
            self._answers.clear()
        system = self._answers[der] = self._registered(der)
        return system

    def _registered(self, der: bytes) -> System | None:
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

    def systems(self) -> list[System]:
        return [registration.system for registration in self._by_asid.values()]


def _revocations(data: dict[str, object]) -> list[dict[str, object]]:
    revoked = data.get("revoked", [])
    if not isinstance(revoked, list) or not all(
            isinstance(r, dict) and ("cert_sha256" in r or "serial" in r) for r in revoked):
        raise ValueError("revoked must be a list of objects, each with cert_sha256 or serial")
    return revoked


def save_registry(path: Path, entries: list[dict[str, object]]) -> None:
    """Write the systems, keeping everything else in the file (the ``revoked`` deny list above all)."""
    document: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
    document["systems"] = entries
    path.write_text(json.dumps(document, indent=2))


class RegistryFile:
    """The registry file operators manage (``safeguarding systems``), re-read when it changes, so a
    registration applies to the next request without a restart.

    A file that is broken at start-up stops the server starting; one that breaks later refuses every
    system until it is fixed: failing closed, and logged.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp = self._current_stamp()
        self._registry = SystemRegistry.load(path)

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def current(self) -> SystemRegistry:
        stamp = self._current_stamp()
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._registry = SystemRegistry.load(self._path)
                    log.info("system registry reloaded", extra={"event": "SYSTEM_REGISTRY_RELOADED"})
                except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                    self._registry = SystemRegistry([])
                    log.error("system registry unreadable: every system is refused",
                              extra={"event": "SYSTEM_REGISTRY_UNREADABLE", "error": type(exc).__name__})
                self._stamp = stamp
            return self._registry
