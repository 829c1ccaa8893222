"""Auditing the SMSP's configuration (SMSP-AUDIT-008: changes to reference and configuration data).

At every start-up the SMSP records one audit event, ``interaction = configuration``, outcome
``CONFIGURATION_LOADED``, whose ``resource_id`` is the SHA-256 of the files it was configured from (the
TOML file, the user mapping, the client registry), in that order. A change made while it was stopped
shows as a different hash from the previous start's. The client registry is also re-read while the SMSP
runs: each time it is, the same event is recorded again (``audit_configuration_later``, off the request's
path), so a client added or removed at run time is in the audit trail at once. ``safeguarding smsp audit
search --outcome CONFIGURATION_LOADED`` lists them.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path

from ..services.auditing import Auditor
from ..services.context import RequestContext

LOADED = "CONFIGURATION_LOADED"


def configuration_hash(sources: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        content = source.read_bytes() if source.exists() else b""
        digest.update(str(source).encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def audit_configuration(auditor: Auditor, sources: Iterable[Path]) -> str:
    fingerprint = configuration_hash(sources)
    ctx = RequestContext(api="smsp", interaction="configuration", request_id=str(uuid.uuid4()),
                         resource_id=fingerprint)
    auditor.record(ctx, (200, LOADED))
    return fingerprint


def audit_configuration_later(auditor: Auditor, sources: Iterable[Path]) -> None:
    """Record the configuration event from another thread (called where a request is being answered)."""
    threading.Thread(target=audit_configuration, args=(auditor, tuple(sources)), name="configuration-audit",
                     daemon=True).start()
