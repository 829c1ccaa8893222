"""Audit checkpoints: the chain head, MACed, appended to a file outside the database.

The chain (chain.py) catches a record edited, removed or reordered, and the chain head catches records
removed from the end, but only while the head itself is honest: someone who can write to the database can
delete the newest records and set the head back to the last one left, and the chain then verifies, without
the audit key. A checkpoint anchors the chain outside the database: a running server appends the head's
sequence number and hash, with an HMAC under a key derived from the audit key (which the database never
holds), to an append-only file every few seconds when the head has moved, and at shutdown.
``safeguarding audit verify`` then also checks that every checkpointed record is still in the chain with
the hash it had: records removed after a checkpoint are found even with the head rolled back.

It does not catch what happened in the seconds since the last checkpoint (at most ``INTERVAL``), nor
anything done by someone who holds the audit key or can rewrite the checkpoint file as well as the
database (keep the file on other storage, or ship it to a log service, for that). A checkpoint line that
was altered, or one whose MAC does not match, fails the verification.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import orjson

from ..fileutil import append_private

log = logging.getLogger(__name__)

INTERVAL = 5.0  # seconds between checkpoints at most, while the chain grows


def checkpoint_key(audit_key: bytes) -> bytes:
    """The checkpoints' MAC key: derived from the audit key (never in the database), distinct from its use."""
    return hmac.digest(audit_key, b"safeguarding audit checkpoint v1", "sha256")


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str

    def mac(self, key: bytes) -> str:
        payload = orjson.dumps({"seq": self.seq, "hash": self.hash, "at": self.at}, option=orjson.OPT_SORT_KEYS)
        return hmac.digest(key, payload, "sha256").hex()

    def line(self, key: bytes) -> bytes:
        return orjson.dumps({"seq": self.seq, "hash": self.hash, "at": self.at, "mac": self.mac(key)}) + b"\n"


class CheckpointError(Exception):
    """The checkpoint file was altered (a line unreadable, or its MAC wrong)."""


def read_checkpoints(path: Path, audit_key: bytes) -> list[Checkpoint]:
    """Every checkpoint in the file, each MAC checked; a missing file has none."""
    key = checkpoint_key(audit_key)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    found = []
    lines = data.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = orjson.loads(line)
            checkpoint = Checkpoint(int(raw["seq"]), str(raw["hash"]), str(raw["at"]))
            mac = str(raw["mac"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if number == len(lines) and not data.endswith(b"\n"):
                continue  # the last line cut short by a crash while it was written
            raise CheckpointError(f"checkpoint line {number} is not readable") from exc
        if not hmac.compare_digest(mac, checkpoint.mac(key)):
            raise CheckpointError(f"checkpoint line {number} does not match its MAC")
        found.append(checkpoint)
    return found


def anchors(checkpoints: Iterable[Checkpoint]) -> dict[int, str]:
    """Sequence number -> the hash the chain must have there."""
    return {c.seq: c.hash for c in checkpoints}


class Checkpointer:
    """Appends the chain head to ``path`` every ``interval`` seconds when it has moved, and once at ``close``."""

    def __init__(self, path: Path, audit_key: bytes, head: Callable[[], tuple[int, str]],
                 interval: float = INTERVAL) -> None:
        self.path = path
        self._key, self._head, self._interval = checkpoint_key(audit_key), head, interval
        self._fd = append_private(path)
        self._last: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="audit-checkpoint", daemon=True)
        self._thread.start()

    def checkpoint(self) -> None:
        """Append the current head if it has moved since the last checkpoint (raises if the store cannot say)."""
        with self._lock:
            head = self._head()
            if head == self._last or head[0] == 0:
                return
            at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            os.write(self._fd, Checkpoint(head[0], head[1], at).line(self._key))
            os.fsync(self._fd)
            self._last = head

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            self.checkpoint()
        except Exception as exc:  # noqa: BLE001 - the store is gone: the last checkpoint written stands
            log.warning("audit checkpoint failed", extra={"event": "AUDIT_CHECKPOINT_FAILED",
                                                          "error": type(exc).__name__})
        os.close(self._fd)

    def _serve(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.checkpoint()
            except Exception as exc:  # noqa: BLE001 - tried again next time
                log.warning("audit checkpoint failed", extra={"event": "AUDIT_CHECKPOINT_FAILED",
                                                              "error": type(exc).__name__})
