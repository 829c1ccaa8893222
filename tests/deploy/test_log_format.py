"""Log format: console lines on a terminal, JSON elsewhere, and --log-format / log_format over both."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

SCRIPT = ("import logging, sys; from safeguarding import logs; logs.configure('INFO', sys.argv[1]); "
          "logging.getLogger('safeguarding.x').info('hello', extra={'event': 'E', 'count': 3}); "
          "logging.getLogger('alembic.runtime.migration').info('Running upgrade'); "
          "logging.getLogger('somelibrary').warning('patient 9434765919')")


def _run(log_format: str, terminal: bool) -> str:
    if not terminal:
        return subprocess.run([sys.executable, "-c", SCRIPT, log_format], capture_output=True, text=True,
                              check=True).stderr
    controller, child = pty.openpty()
    try:
        subprocess.run([sys.executable, "-c", SCRIPT, log_format], stderr=child, stdout=subprocess.DEVNULL,
                       check=True)
        os.close(child)
        chunks = []
        while True:
            try:
                data = os.read(controller, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks).decode().replace("\r\n", "\n")
    finally:
        os.close(controller)


def test_auto_is_console_on_a_terminal_and_json_elsewhere() -> None:
    console = _run("auto", terminal=True).splitlines()
    assert console[0].endswith(" info  hello  count=3 event=E") and len(console) == 2
    assert console[1].endswith(" WARN  (somelibrary)")  # a library's warning: its name, not its text
    lines = [json.loads(line) for line in _run("auto", terminal=False).splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("safeguarding.x", "hello"), ("somelibrary", "(library message)")]  # Alembic's chatter dropped


def test_the_asked_format_wins() -> None:
    assert _run("json", terminal=True).lstrip().startswith("{")
    assert " info  hello" in _run("console", terminal=False)
