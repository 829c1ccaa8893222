"""The audit spool: audit events the store could not take, kept on local disk until it can.

When the database is unreachable a request is refused (503), and its audit event cannot be appended to
the chain. It is written here instead, one JSON line per event, fsynced before the answer is sent, in a
file of this process's own (``0600`` in a ``0700`` directory). A thread appends spooled events to the
chain once the store answers again (within a second or two), oldest first, then empties the file. Files
left by a process that died are flushed by the next process using the same spool directory (a file is
held under ``flock`` by the process writing it, so a live process's file is never taken from it).

Delivery is at least once: a crash between the commit and emptying the file appends those events again
(each keeps its request id and time, so a duplicate is recognisable). Nothing is lost.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

import orjson

from ..domain.audit import AuditEvent
from ..fileutil import append_private, private_dir

log = logging.getLogger(__name__)

Append = Callable[[list[AuditEvent]], None]  # appends events to the chain in one transaction, or raises


class AuditSpool:
    def __init__(self, directory: Path, append: Append, interval: float = 1.0) -> None:
        self.directory = directory
        self._append, self._interval = append, interval
        private_dir(directory)
        self.path = directory / f"{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        self._fd = append_private(self.path)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # ours while this process lives
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="audit-spool", daemon=True)
        self._thread.start()
        self._wake.set()  # files left by a process that died are flushed as soon as the store answers

    def keep(self, event: AuditEvent) -> None:
        """Write ``event`` durably; it reaches the chain when the store is back."""
        line = orjson.dumps(event.__dict__) + b"\n"
        with self._lock:
            os.write(self._fd, line)
            os.fsync(self._fd)
        log.warning("audit event spooled", extra={"event": "AUDIT_SPOOLED", "request_id": event.request_id})
        self._wake.set()

    def pending(self) -> int:
        """How many events wait in this directory's spool files."""
        total = 0
        for path in self.directory.glob("*.jsonl"):
            try:
                total += path.read_bytes().count(b"\n")
            except FileNotFoundError:
                continue
        return total

    def flush(self) -> int:
        """Append every spooled event to the chain; how many were. Raises if the store cannot take them."""
        flushed = self._flush_own()
        for path in sorted(self.directory.glob("*.jsonl")):
            if path != self.path:
                flushed += self._flush_orphan(path)
        return flushed

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - the file stays; the next process using this spool flushes it
            log.warning("audit spool kept", extra={"event": "AUDIT_SPOOL_KEPT"})
        with self._lock:
            empty = os.fstat(self._fd).st_size == 0
            if empty:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            if self._stop.is_set():
                return
            if not self._anything_waits():
                self._wake.clear()
                continue
            try:
                count = self.flush()
            except Exception as exc:  # noqa: BLE001 - still unavailable: try again after the interval
                log.info("audit spool waits", extra={"event": "AUDIT_SPOOL_WAITING", "error": type(exc).__name__})
                self._stop.wait(self._interval)
                continue
            if count:
                log.warning("audit spool flushed", extra={"event": "AUDIT_SPOOL_FLUSHED", "count": count})

    def _anything_waits(self) -> bool:
        for path in self.directory.glob("*.jsonl"):
            try:
                if path.stat().st_size:
                    return True
            except FileNotFoundError:
                continue  # flushed and removed by another process meanwhile
        return False

    def _flush_own(self) -> int:
        with self._lock:
            data = _read_all(self._fd)
        events = _events(data)
        if not events:
            return 0
        self._append(events)
        with self._lock:  # keep what was spooled while the chain was being written
            rest = _read_all(self._fd)[len(data):]
            os.ftruncate(self._fd, 0)
            if rest:
                os.write(self._fd, rest)
            os.fsync(self._fd)
        return len(events)

    def _flush_orphan(self, path: Path) -> int:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # a live process's spool: it flushes its own
            events = _events(_read_all(fd))
            if events:
                self._append(events)
            path.unlink(missing_ok=True)
            return len(events)
        finally:
            os.close(fd)


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0) if size else b""


def _events(data: bytes) -> list[AuditEvent]:
    # A line cut short by a crash while it was written was never acknowledged to anyone: it is skipped.
    events = []
    for line in data.splitlines():
        try:
            events.append(AuditEvent(**orjson.loads(line)))
        except (orjson.JSONDecodeError, TypeError):
            log.error("audit spool line unreadable", extra={"event": "AUDIT_SPOOL_UNREADABLE"})
    return events
