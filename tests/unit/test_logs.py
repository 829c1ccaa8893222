"""logs.event: the request line written straight from its fields is the line a LogRecord would give."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

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


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_on_a_loop_one_turns_lines_are_written_together_on_the_next_turn_in_order() -> None:
    logger = logging.getLogger("safeguarding.request")
    seen: dict[str, object] = {}
    with _configured() as out:
        async def main() -> None:
            for n in range(3):
                logs.event(logger, "request", {**FIELDS, "request_id": f"r-{n}"})
            seen["before the turn ended"] = out.getvalue()
            await asyncio.sleep(0)  # the loop's next turn
            seen["after one turn"] = [line["request_id"] for line in _lines(out)]
            seen["writes"] = out.writes
            logs.event(logger, "request", {**FIELDS, "request_id": "r-3"})
            logger.warning("a record", extra={"event": "OTHER"})  # lines made before it are written before it

        asyncio.run(main())
        assert seen == {"before the turn ended": "", "after one turn": ["r-0", "r-1", "r-2"], "writes": 1}
        assert [line.get("request_id", line["event"]) for line in _lines(out)] == ["r-0", "r-1", "r-2", "r-3", "OTHER"]
        logs.event(logger, "request", {**FIELDS, "request_id": "r-4"})  # no loop: written at once
        assert _lines(out)[-1]["request_id"] == "r-4"


def test_lines_still_pending_are_written_by_logging_shutdown() -> None:
    loop = asyncio.new_event_loop()

    def last_turn() -> None:
        loop.stop()  # this is the loop's last turn: the line's write, due on the next, never runs
        logs.event(logging.getLogger("safeguarding.request"), "request", FIELDS)

    with _configured() as out:
        loop.call_soon(last_turn)
        loop.run_forever()
        loop.close()
        assert out.getvalue() == ""
        logging.getLogger().handlers[0].flush()  # what logging.shutdown() does for every handler at exit
        assert _lines(out)[0]["request_id"] == "r-1"


@contextmanager
def _configured() -> Iterator[_CountingStream]:
    """The configured handler as the only one (inside the test's body: pytest's capture handler is gone)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("INFO")
    out = _CountingStream()
    root.handlers[0].setStream(out)  # type: ignore[attr-defined]
    try:
        yield out
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
