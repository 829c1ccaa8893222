"""The system registry: accredited systems, their ASIDs, ODS codes, kinds and allowed interactions.

A JSON file operators manage (``systems.json``): a verified client certificate maps to a registered
system by the certificate's SHA-256 fingerprint, or failing that by its subject common name (the
ASID), so a system can renew its certificate from the same CA without re-registering.

The file's ``revoked`` list is the operator's deny list (``safeguarding systems revoke``): a
certificate named there by SHA-256 fingerprint or serial number belongs to no system, whatever the
registrations say, so a stolen or compromised certificate is refused from the next request on.

On PostgreSQL the same document lives in the database (store/registry_table.py), shared by every node: a
node imports its ``systems.json`` once, when the database holds no registry yet; from then on
``safeguarding systems`` edits the database's copy, and every node sees a change within
``SHARED_CHECK_SECONDS``. The file stays the registry of a SQLite deployment, and the import format.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509

from ..domain.caller import System, SystemKind
from ..fileutil import replace_private
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
        return cls.from_document(json.loads(path.read_text()))

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> SystemRegistry:
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
        if not self._revoked_fingerprints and not self._revoked_serials:
            return False
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
    replace_private(path, json.dumps(document, indent=2).encode())  # never half-written for a reloading server


SHARED_CHECK_SECONDS = 1.0  # how often a node looks whether the database's registry has changed


class _Configured(Protocol):
    @property
    def registry_file(self) -> Path: ...
    @property
    def shared_registry_url(self) -> str | None: ...


def configured_registry(settings: _Configured) -> RegistryFile:
    """The registry a server uses: its file, or on PostgreSQL outside the sandbox the database's shared copy."""
    return RegistryFile(settings.registry_file, settings.shared_registry_url)


def shared(database_url: str | None) -> bool:
    """Whether a deployment on this database keeps its registry in the database (PostgreSQL)."""
    return bool(database_url) and str(database_url).startswith("postgresql")


class RegistryFile:
    """The registry operators manage (``safeguarding systems``), re-read when it changes, so a
    registration or revocation applies to the next request without a restart: the file, or on PostgreSQL
    (``database_url``) the database's copy, which every node shares.

    A registry that is broken at start-up stops the server starting; one that breaks later refuses every
    system until it is fixed: failing closed, and logged. A database that cannot be reached leaves the last
    registry read in force (its revocations included) until it answers again.
    """

    def __init__(self, path: Path, database_url: str | None = None,
                 on_reload: Callable[[], None] | None = None) -> None:
        """``on_reload``: called after the file was read again because it changed (e.g. to audit the change)."""
        self._path = path
        self._on_reload = on_reload
        self._lock = threading.Lock()
        self._engine: Any = None
        if shared(database_url):
            self._init_shared(str(database_url))
            return
        self._stamp = self._current_stamp()
        self._registry = SystemRegistry.load(path)

    def _init_shared(self, database_url: str) -> None:
        from ..store.registry_table import change_registry, read_registry
        from ..store.sql import make_engine

        self._engine = make_engine(database_url)
        version, document = read_registry(self._engine)
        if document is None:  # the first node: import this node's file
            imported = json.loads(self._path.read_text()) if self._path.exists() else {"systems": [], "revoked": []}
            SystemRegistry.from_document(imported)  # a broken file is not imported (and stops the start)
            change_registry(self._engine, lambda current: current if current is not None else imported)
            version, document = read_registry(self._engine)
            log.info("system registry imported", extra={"event": "SYSTEM_REGISTRY_IMPORTED"})
        self._version, self._checked = version, time.monotonic()
        self._registry = SystemRegistry.from_document(document or {})

    def _current_shared(self) -> SystemRegistry:
        from ..store.interface import StoreUnavailable
        from ..store.registry_table import read_registry, registry_version

        with self._lock:
            if time.monotonic() - self._checked < SHARED_CHECK_SECONDS:
                return self._registry
            self._checked = time.monotonic()
            try:
                if registry_version(self._engine) != self._version:
                    self._version, document = read_registry(self._engine)
                    self._registry = _parsed(document or {})
            except StoreUnavailable:
                log.warning("system registry not checked", extra={"event": "SYSTEM_REGISTRY_UNCHECKED"})
            return self._registry

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def current(self) -> SystemRegistry:
        if self._engine is not None:
            return self._current_shared()
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
                if self._on_reload is not None:
                    self._on_reload()
            return self._registry


def _parsed(document: dict[str, Any]) -> SystemRegistry:
    try:
        registry = SystemRegistry.from_document(document)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.error("system registry unreadable: every system is refused",
                  extra={"event": "SYSTEM_REGISTRY_UNREADABLE", "error": type(exc).__name__})
        return SystemRegistry([])
    log.info("system registry reloaded", extra={"event": "SYSTEM_REGISTRY_RELOADED"})
    return registry
