"""The audit hash chain: each record's HMAC covers its event and the previous record's hash.

Editing, deleting or reordering a stored record breaks the chain from that point on; removing records
from the end is caught by the chain head, which is updated in the same transaction as each append, and,
when the head was rolled back too, by the checkpoints kept outside the database (checkpoints.py).
Keying the HMAC means someone with write access to the database but not the audit key cannot forge a
consistent chain.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

from ..domain.audit import AuditEvent, AuditRecord

GENESIS = "0" * 64


def link_hash(key: bytes, seq: int, prev_hash: str, event: AuditEvent | Mapping[str, object]) -> str:
    """The record's HMAC; ``event`` is the event or its ``fields()``, as stored."""
    fields = event.fields() if isinstance(event, AuditEvent) else event
    payload = orjson.dumps({"seq": seq, "prev": prev_hash, "event": fields}, option=orjson.OPT_SORT_KEYS)
    return hmac.digest(key, payload, "sha256").hex()


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    problem: str | None = None
    seq: int | None = None


def verify(key: bytes, records: Iterable[AuditRecord], head_seq: int, head_hash: str,
           anchors: Mapping[int, str] | None = None) -> Verification:
    """Walk the chain in order and check every link, then that it ends where the head says. ``anchors``
    (sequence number -> hash, from the checkpoints) are places the chain must pass through."""
    expected_seq, prev = 1, GENESIS
    checked = 0
    anchors = anchors or {}
    for record in records:
        if record.seq != expected_seq:
            return Verification(False, checked, f"record {expected_seq} is missing", expected_seq)
        if record.prev_hash != prev:
            return Verification(False, checked, "record does not follow the previous one", record.seq)
        if not hmac.compare_digest(record.hash, link_hash(key, record.seq, prev, record.event)):
            return Verification(False, checked, "record content does not match its hash", record.seq)
        anchored = anchors.get(record.seq)
        if anchored is not None and not hmac.compare_digest(record.hash, anchored):
            return Verification(False, checked, "record differs from its checkpoint", record.seq)
        prev, expected_seq, checked = record.hash, expected_seq + 1, checked + 1
    beyond = max((seq for seq in anchors if seq > checked), default=None)
    if beyond is not None:
        return Verification(False, checked, f"chain ends before checkpoint {beyond} (records removed and the head "
                            "rolled back)", checked + 1)
    if checked != head_seq or not hmac.compare_digest(prev, head_hash):
        return Verification(False, checked, "chain ends before its recorded head (records removed)", checked + 1)
    return Verification(True, checked)
