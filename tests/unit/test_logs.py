"""logs.event: the request line written straight from its fields is the line a LogRecord would give."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator

import pytest

from safeguarding import logs

FIELDS = {"event": "REQUEST_COMPLETED", "api": "fgm-r4", "interaction": "search", "status": 200, "outcome": "OK",
          "request_id": "r-1", "duration_ms": 1.5, "nhs_number": "9434765919"}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("INFO")
    out = io.StringIO()
    root.handlers[0].setStream(out)  # type: ignore[attr-defined]
    yield out
    root.handlers[:], root.level = saved[0], saved[1]


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_direct_line_is_the_records_line_but_for_its_time(stream: io.StringIO) -> None:
    logger = logging.getLogger("safeguarding.request")
    logs.event(logger, "request", FIELDS)
    logger.info("request", extra=FIELDS)
    direct, through_record = _lines(stream)
    assert direct.pop("time") and through_record.pop("time")
    assert direct == through_record == {
        "level": "INFO", "logger": "safeguarding.request", "pid": os.getpid(), "message": "request",
        "event": "REQUEST_COMPLETED", "api": "fgm-r4", "interaction": "search", "status": 200, "outcome": "OK",
        "request_id": "r-1", "duration_ms": 1.5,
    }  # the NHS number is not on the allow-list: in neither line


def test_a_library_loggers_message_is_redacted_directly_too(stream: io.StringIO) -> None:
    logs.event(logging.getLogger("somelibrary"), "patient 9434765919", {"event": "X"})
    assert _lines(stream)[0]["message"] == "(library message)"


def test_below_its_level_nothing_is_written(stream: io.StringIO) -> None:
    logging.getLogger().setLevel("WARNING")
    logs.event(logging.getLogger("safeguarding.request"), "request", FIELDS)
    assert stream.getvalue() == ""


def test_another_handler_gets_a_real_record(stream: io.StringIO, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logs.event(logging.getLogger("safeguarding.request"), "request", FIELDS)
    assert [(r.name, r.getMessage(), r.__dict__["event"]) for r in caplog.records] == [
        ("safeguarding.request", "request", "REQUEST_COMPLETED")]
    assert _lines(stream)[0]["event"] == "REQUEST_COMPLETED"  # and the configured handler still its line


def test_a_filter_on_the_way_is_honoured(stream: io.StringIO) -> None:
    logger = logging.getLogger("safeguarding.filtered")
    logger.addFilter(lambda record: False)
    try:
        logs.event(logger, "request", FIELDS)
    finally:
        logger.filters.clear()
    assert stream.getvalue() == ""
