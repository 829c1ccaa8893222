"""A controllable clock for the sandbox and tests only (``serve --sandbox --clock-file PATH``).

The file holds an offset in seconds (e.g. ``90000`` for 25 hours ahead; empty or missing is 0).
It is re-read whenever it changes, so a test moves the server's time by writing the file, without a
restart (write it atomically, e.g. a temporary file then a rename, so no request reads half of it).
Only the service's notion of time moves (access times, "today" for plans and ages): token lifetimes
and TLS are still judged on real time. Never available without ``--sandbox``.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

from ..domain.clock import OffsetClock


class ClockFileError(ValueError):
    """The clock file does not hold a number of seconds."""


class FileOffsetClock:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._clock = OffsetClock(timedelta(0))
        self._offset()  # an unreadable file stops the server starting, rather than every request failing

    def _offset(self) -> OffsetClock:
        try:
            stat = self._path.stat()
            stamp: tuple[int, int, int] | None = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                text = self._path.read_text().strip() if stamp is not None else ""
                try:
                    seconds = float(text) if text else 0.0
                except ValueError:
                    raise ClockFileError("the clock file must hold a number of seconds") from None
                self._clock, self._stamp = OffsetClock(timedelta(seconds=seconds)), stamp
            return self._clock

    def now(self) -> datetime:
        return self._offset().now()
