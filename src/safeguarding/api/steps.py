"""The steps every entry point's pipeline shares: the APIs' ``Endpoint`` (pipeline.py: R4 FGM, CP-IS, DSTU2
and the SMSP), the web's ``WebEndpoint`` (web/endpoint.py) and the router's fallback answers (fallback.py).

One definition each of: what a well-formed trace id is, how a request body is read within its size and
time limits, how a failure nobody anticipated is logged (type and stack only: never the message, which may
quote patient data), and the one line and metrics every request ends with.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import Receive

from .. import logs, metrics
from ..protocol import env_seconds
from . import errors as e

log = logging.getLogger("safeguarding.request")

# X-Request-ID, X-Correlation-ID and TraceID: 1-128 of A-Za-z0-9._:- (the OpenAPI description's pattern too).
TRACE_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"
TRACE_HEADERS = {"x-request-id": "X-Request-ID", "x-correlation-id": "X-Correlation-ID", "traceid": "TraceID"}
_TRACE_ID = re.compile(TRACE_ID_PATTERN)
TRACE_KEYS = {name.encode("latin-1"): canonical for name, canonical in TRACE_HEADERS.items()}


def header_values(raw: Iterable[tuple[bytes, bytes]], names: Mapping[bytes, str]) -> dict[str, list[str]]:
    """The values of the headers ``names`` holds (by their lower-case names, as the raw header list has them), each
    under the name ``names`` gives it, in order, in one pass: what ``Headers.getlist`` finds for each of them (a
    pass of its own each)."""
    found: dict[str, list[str]] = {}
    for key, value in raw:
        canonical = names.get(key)
        if canonical is not None:
            if canonical in found:
                found[canonical].append(value.decode("latin-1"))
            else:
                found[canonical] = [value.decode("latin-1")]
    return found


def well_formed_trace_id(value: str | None) -> bool:
    return value is not None and _TRACE_ID.fullmatch(value) is not None


class ReadBodyError(Exception):
    """The client went away before its body arrived: there is nobody to answer."""


# A client that trickles its body (slowloris) would hold a worker's request open for ever: the whole
# body must arrive within this many seconds (1 MiB in 60 s is ~140 kbit/s), else 408 and the
# connection is closed. SAFEGUARDING_BODY_TIMEOUT changes it (docs/operations.md).
BODY_TIMEOUT = env_seconds("SAFEGUARDING_BODY_TIMEOUT", 60.0)


async def read_body(receive: Receive, headers: Headers, limit: int, timeout: float | None = None) -> bytes:
    """The body, at most ``limit`` bytes within ``timeout`` seconds; else the pipeline's error (413, 400, 408)."""
    declared = headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise (e.TOO_LARGE if declared.isdigit() else e.NOT_WELL_FORMED).error()
    try:
        async with asyncio.timeout(timeout or BODY_TIMEOUT):  # asyncio's own: anyio's scope cost ~10x as much
            return await _receive_body(receive, limit)
    except TimeoutError:
        raise e.REQUEST_TIMEOUT.error() from None


async def _receive_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ReadBodyError("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise e.TOO_LARGE.error()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def log_unhandled(exc: BaseException, request_id: str) -> None:
    """The last line of defence's record: the error's type and stack frames, the request id; no message."""
    log.error("unhandled error", extra={"event": "UNHANDLED_ERROR", "request_id": request_id,
                                        "error": type(exc).__name__,
                                        "stack": "".join(traceback.format_tb(exc.__traceback__))})


def completed(api: str, interaction: str, status: int, outcome: str, request_id: str, started: float,
              reason: str | None = None) -> None:
    """The request's metrics and its one log line: codes and ids, never patient data."""
    elapsed = time.perf_counter() - started
    metrics.observe(api, interaction, status, outcome, elapsed)
    fields: dict[str, Any] = {"event": "REQUEST_COMPLETED", "api": api, "interaction": interaction,
                              "status": status, "outcome": outcome, "request_id": request_id,
                              "duration_ms": round(elapsed * 1000, 2)}
    if reason:
        fields["reason"] = reason  # a fixed vocabulary (the web's refusals)
    logs.event(log, "request", fields)
