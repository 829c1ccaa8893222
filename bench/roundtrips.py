"""Round trips to PostgreSQL per request: a noise-free figure beside the benchmark's throughput.

Starts ``serve`` (one worker) on a kept PostgreSQL copy (``bench/run --backend postgresql --keep``), warms it,
then records the worker's ``sendto``/``recvfrom`` calls on its sockets to port 5432 with ``strace`` while wrk
sends one scenario's requests, and counts round trips: per socket, a run of sends followed by a receive that
returned data. strace slows the worker several times over: the requests a second it reaches mean nothing,
the round trips a request do.

    python bench/roundtrips.py DATA_DIR DATABASE_URL PARAMS [--connections N] [--seconds S]

``PARAMS`` is a scenario's wrk parameter file from the run (``bench/.cache/runs/<backend>-<size>-files/1.params``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import procs

BENCH = Path(__file__).resolve().parent
PYTHON = BENCH.parent / ".venv" / "bin" / "python"
CALL = re.compile(r"(sendto|recvfrom)\((\d+)<TCP:\[[^\]]*:5432\]>.*= (-?\d+)")


def count(trace: Path) -> tuple[int, int]:
    """(round trips, sends) to PostgreSQL in an ``strace -yy`` log."""
    sent: dict[str, bool] = {}
    trips = sends = 0
    for line in trace.read_text(errors="replace").splitlines():
        found = CALL.search(line)
        if not found:
            continue
        call, fd, returned = found.group(1), found.group(2), int(found.group(3))
        if call == "sendto":
            sends += 1
            sent[fd] = True
        elif returned > 0 and sent.get(fd):
            trips += 1
            sent[fd] = False
    return trips, sends


def wrk(url: str, params: Path, connections: int, seconds: int) -> dict[str, Any]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s",  # noqa: S603, S607
                          str(BENCH / "lua" / "read.lua"), url, "--", str(params)],
                         env=dict(os.environ, BENCH_LUA=str(BENCH / "lua")), capture_output=True, text=True,
                         check=True)
    line = next(line for line in out.stdout.splitlines() if line.startswith("BENCH_JSON "))
    figures: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("database_url")
    parser.add_argument("params", type=Path)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    port = procs.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = procs.Proc.start("server", [str(PYTHON), "-m", "safeguarding", "serve", "--sandbox", "--data-dir",
                                             str(args.data_dir), "--port", str(port), "--workers", "1",
                                             "--database-url", args.database_url], Path(tmp) / "server.log")
        try:
            procs.wait_https(port, "/_ping", server)
            url = f"https://127.0.0.1:{port}"
            wrk(url, args.params, args.connections, 1)  # warm: connections made, statements prepared
            children = subprocess.run(["pgrep", "-P", str(server.pid)],  # noqa: S603, S607
                                      capture_output=True, text=True, check=False).stdout.split()
            worker = children[0] if children else str(server.pid)
            trace = Path(tmp) / "strace.txt"
            tracer = subprocess.Popen(["strace", "-f", "-yy", "-e", "trace=sendto,recvfrom", "-o", str(trace),  # noqa: S603, S607
                                       "-p", worker], stderr=subprocess.DEVNULL)
            time.sleep(1)
            figures = wrk(url, args.params, args.connections, args.seconds)
            time.sleep(0.5)  # the last batch's commit
            tracer.terminate()
            tracer.wait(timeout=30)
        finally:
            server.stop()
        trips, sends = count(trace)
    requests = figures["requests"]
    print(json.dumps({"requests": requests, "errors": figures["errors"], "statuses": figures["statuses"],
                      "round_trips": trips, "sends": sends,
                      "round_trips_per_request": round(trips / max(requests, 1), 2)}))


if __name__ == "__main__":
    sys.exit(main())
