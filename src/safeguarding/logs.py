"""Structured JSON logs: one object per line, event codes and ids only.

Only fields on an allow-list are written, so a careless ``extra=`` cannot put patient data in a log.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

import orjson

ALLOWED_FIELDS = frozenset(
    {"event", "api", "interaction", "status", "outcome", "request_id", "duration_ms", "reason", "error", "stack",
     "count", "path", "port", "host", "workers", "seq", "checked"}
)


# Loggers whose messages carry no request data (start-up, shutdown, migrations). Others are redacted.
_TRUSTED_MESSAGES = ("safeguarding", "uvicorn.error", "alembic.runtime.migration")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage() if record.name.startswith(_TRUSTED_MESSAGES) else "(library message)",
        }
        for name in ALLOWED_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "INFO") -> None:
    # Nothing here writes the caller's file, line, thread or process name: don't make every record find them.
    logging._srcfile = None  # the documented switch (the logging HOWTO, "Optimization")
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
