"""Structured JSON logs: one object per line, event codes and ids only.

On a terminal (or with ``--log-format console``) the same records are short human lines instead. Routine
messages of libraries (alembic's migration chatter, SQLAlchemy, httpx) are dropped; their warnings and
errors are shown by logger name, their text withheld (it may hold request data).

Only fields on an allow-list are written, so a careless ``extra=`` cannot put patient data in a log.

``event(logger, message, fields)`` is ``logger.info(message, extra=fields)`` for the line every request
writes: when the configured handler is the only one that would see it, the line is made straight
from the fields, the same JSON as through a ``LogRecord`` (which costs ~3 x as much, per request).
On an event loop, the lines of one turn of the loop are written together, once, on its next turn (a
write and a flush per request cost ~10% of a search); any other record, and ``logging.shutdown`` at
exit, writes them first, so the order of lines is kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from time import time

import orjson

ALLOWED_FIELDS = frozenset(
    {"event", "api", "interaction", "status", "outcome", "request_id", "duration_ms", "reason", "error", "stack",
     "count", "path", "port", "host", "workers", "seq", "checked"}
)


# Loggers whose messages carry no request data (start-up, shutdown, migrations). Others are redacted.
_TRUSTED_MESSAGES = ("safeguarding", "uvicorn.error", "alembic.runtime.migration")
# Libraries whose routine (INFO) chatter says nothing to an operator: only their warnings and errors are kept.
_QUIET_LIBRARIES = ("alembic", "sqlalchemy", "httpx", "httpcore", "asyncio", "multipart")


def _line(created: float, level: str, name: str, pid: int | None, message: str, fields: Mapping[str, object]) -> str:
    entry: dict[str, object] = {
        "time": datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": name,
        "pid": pid,
        "message": message if name.startswith(_TRUSTED_MESSAGES) else "(library message)",
    }
    for key in ALLOWED_FIELDS.intersection(fields):
        entry[key] = fields[key]
    return orjson.dumps(entry, default=str).decode()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _line(record.created, record.levelname, record.name, record.process, record.getMessage(),
                     record.__dict__)


_pid = os.getpid()  # a system call each time it is asked: asked once, and again in a forked child


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class JsonLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure`` installs: JSON lines on stderr, and ``write`` for ``event``'s lines."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(JsonFormatter())
        self._pending: list[str] = []  # ``write``'s lines not yet written (guarded by ``lock``)

    def write(self, name: str, message: str, fields: Mapping[str, object]) -> None:
        """``event``'s line: written on the event loop's next turn with the others of this one, or at once
        outside a loop."""
        text = _line(time(), "INFO", name, _pid, message, fields) + self.terminator
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(text)
            first = len(self._pending) == 1
        if loop is None:
            self.flush()
        elif first:
            loop.call_soon(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        if self._pending:
            self.flush()  # lines made before this record come before it
        super().emit(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            pending, self._pending = self._pending, []
            try:
                if pending:
                    self.stream.write("".join(pending))
                self.stream.flush()
            except Exception:  # noqa: BLE001, S110 - as for any log record: a lost line never fails the request
                pass


def event(logger: logging.Logger, message: str, fields: Mapping[str, object]) -> None:
    """``logger.info(message, extra=fields)``; written directly when only the configured handler would
    see the record (no filters, no other handlers: a test capturing logs gets real records)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _only_handler(logger)
    if handler is None:
        logger.info(message, extra=dict(fields))
    else:
        handler.write(logger.name, message, fields)


def _only_handler(logger: logging.Logger) -> JsonLineHandler | None:
    """The configured handler, when an INFO record of ``logger`` would reach it and nothing else."""
    root = logging.root
    handler = root.handlers[0] if len(root.handlers) == 1 else None
    if type(handler) is not JsonLineHandler or handler.filters or handler.level > logging.INFO or root.filters:
        return None
    node: logging.Logger | None = logger
    while node is not root:
        if node is None or node.handlers or node.filters or node.disabled:
            return None  # None: a logger on the way does not propagate (logging decides what happens)
        node = node.parent if node.propagate else None
    return handler


_CONSOLE_LEVELS = {"DEBUG": "debug", "INFO": "info ", "WARNING": "WARN ", "ERROR": "ERROR", "CRITICAL": "CRIT "}


class ConsoleFormatter(logging.Formatter):
    """A short line for a person at a terminal: time, level, message, then the allowed fields as key=value.
    The same allow-list and redaction as the JSON lines: a console line holds nothing a JSON line does not."""

    def format(self, record: logging.LogRecord) -> str:
        name = record.name
        trusted = name.startswith(_TRUSTED_MESSAGES)
        message = record.getMessage() if trusted else f"({name})"
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extras = " ".join(f"{key}={record.__dict__[key]}" for key in sorted(ALLOWED_FIELDS.intersection(
            record.__dict__)) if key not in ("stack",))
        line = f"{stamp} {_CONSOLE_LEVELS.get(record.levelname, record.levelname)} {message}"
        if not name.startswith("safeguarding") and trusted:
            line += f" ({name})"
        if extras:
            line += f"  {extras}"
        stack = record.__dict__.get("stack")
        return f"{line}\n{stack}" if stack else line


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(ConsoleFormatter())


def console_wanted(log_format: str) -> bool:
    """``console`` or ``json`` as asked; ``auto``: console when stderr is a terminal."""
    if log_format == "auto":
        return sys.stderr.isatty()
    return log_format == "console"


def configure(level: str = "INFO", log_format: str = "auto") -> None:
    # Nothing here writes the caller's file, line, thread or process name: don't make every record find them.
    logging._srcfile = None  # the documented switch (the logging HOWTO, "Optimization")
    logging.logThreads = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [ConsoleHandler() if console_wanted(log_format) else JsonLineHandler()]
    root.setLevel(level)
    for library in _QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
