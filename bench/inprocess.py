"""The service's own CPU a request, in process: no HTTP, no TLS, no client on the same cores.

    PYTHONPATH=src:bench .venv/bin/python bench/inprocess.py [--requests 20000] [--scenarios 1,2,3,4,5] [--floor]
                                                             [--backend sqlite|postgresql]

(another version: copy this file into that checkout's bench/ and run it there, on its own data set.)

The app ``create_app`` builds is called as uvicorn would call it (an ASGI scope, ``receive``, ``send``), 32
requests at a time on one event loop, on a working copy of the benchmark's small SQLite data set. What is
measured is the process's CPU time (user + system, every thread: the loop, the commit thread) over the
requests, after a warm-up, divided by the requests: far steadier than throughput on a shared host, since
time spent waiting for a core is not counted. Scenario 3's client certificate is handed in the scope, as
the server's TLS layer would. Scenario 5 counts a create and its removal as two requests.

Each scenario's answers are checked (status, and the body where it tells found from not found), so a
version that refuses the requests cannot look fast. The figures are printed as a table and as JSON.

``--backend postgresql`` runs the service on a working copy of the PostgreSQL data set instead (the floors are
SQLite's only): the process's CPU then counts the writer thread and the driver's side of every round trip, not
the database server's.

``--floor`` measures the floors the same way (``floor.py`` for scenarios 1 and 2, ``floor_cpis.py`` for 4,
``floor_dstu2.py`` for 3: their ASGI app, on a working copy of their own), alternating with the service, and
gives each scenario's CPU over its floor's: the service/floor ratio the targets ask for, without the
client and host noise that moves throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import dataset

from bench import NHS, dstu2_body, flag_bodies  # type: ignore[attr-defined]
from safeguarding.app import create_app
from safeguarding.sandbox.setup import ensure_sandbox
from safeguarding.security.dev_tokens import issue_dev_token
from safeguarding.settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER, Layout

GP_ASID = "047192794544"
CONCURRENCY = 32
Call = Callable[[int], Awaitable[tuple[int, bytes]]]


class _Workdir:
    """What ``dstu2_body`` and ``flag_bodies`` need of a bench run: a place for their files."""

    def __init__(self, path: Path) -> None:
        self.workdir = path


async def asgi(app: Any, method: str, target: str, headers: dict[str, str], body: bytes = b"",
               client_cert: bytes | None = None) -> tuple[int, bytes]:
    path, _, query = target.partition("?")
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "https",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "127.0.0.1:8443", **headers}.items()],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8443),
        "extensions": {"tls": {"client_cert_der": client_cert}} if client_cert else {},
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def scenarios(app: Any, data: dataset.Dataset, layout: Layout, workdir: Path) -> dict[str, tuple[Call, int, bytes]]:
    """Each scenario: a call for request ``i``, the status it must answer, and bytes its body must hold."""
    lists = data.lists

    def token(activities: list[str]) -> str:
        return issue_dev_token(layout.signing_key, issuer=SANDBOX_ISSUER, audience=SANDBOX_AUDIENCE,
                               user_id="555000000001", role_profile_id="555100000001", org_code="RR8",
                               activities=activities, expires_in=6 * 3600)

    reader, clinician, writer = token(["B0370"]), token(["B0107"]), token(["B0370", "B0380"])
    run = _Workdir(workdir)
    query = dstu2_body(run).read_text()  # type: ignore[arg-type]
    create_text, remove_text = (p.read_text() for p in flag_bodies(run))  # type: ignore[arg-type]
    cert = ssl.PEM_cert_to_DER_cert((layout.systems / f"{GP_ASID}.pem").read_text())

    def search(numbers: list[str], path: str, bearer: str, extra: dict[str, str] | None = None) -> Call:
        async def call(i: int) -> tuple[int, bytes]:
            return await asgi(app, "GET", f"{path}?patient:identifier={NHS}{numbers[i % len(numbers)]}",
                              {"authorization": f"Bearer {bearer}", **(extra or {})})
        return call

    async def dstu2(i: int) -> tuple[int, bytes]:
        nhs = lists["with_indicator"][i % len(lists["with_indicator"])]
        body = query.replace("{{nhs}}", nhs).replace("{{id}}", f"00000000-0000-4000-8000-{i:012d}").encode()
        return await asgi(app, "POST", "/fhir/fgm/query", {"content-type": "text/xml; charset=utf-8",
                                                           "soapaction": '"urn:nhs:names:services:clinicals-sync:'
                                                                         'FGMQuery_2_0"'}, body, cert)

    pool = lists["write_pool"]

    async def cycle(i: int) -> tuple[int, bytes]:
        nhs = pool[i % len(pool)]
        headers = {"authorization": f"Bearer {writer}", "content-type": "application/fhir+json"}
        status, body = await asgi(app, "POST", "/fgm/FHIR/R4/Flag", headers,
                                  create_text.replace("{{nhs}}", nhs).encode())
        if status != 201:
            return status, body
        flag_id = json.loads(body)["id"]
        return await asgi(app, "PUT", f"/fgm/FHIR/R4/Flag/{flag_id}", headers,
                          remove_text.replace("{{nhs}}", nhs).replace("{{id}}", flag_id).encode())

    return {
        "1": (search(lists["with_indicator"], "/fgm/FHIR/R4/Flag", reader), 200, b'"resourceType":"Flag"'),
        "2": (search(lists["without_indicator"], "/fgm/FHIR/R4/Flag", reader), 200, b'"total":0'),
        "3": (dstu2, 200, b"<Flag>"),
        "4": (search(lists["with_plan"], "/cpis/FHIR/R4/CareTeam", clinician, {"isunscheduledaccessevent": "true"}),
              200, b'"resourceType":"CareTeam"'),
        "5": (cycle, 200, b'"entered-in-error"'),
    }


async def drive(call: Call, count: int, start: int, expect: tuple[int, bytes]) -> None:
    queue = iter(range(start, start + count))

    async def worker() -> None:
        for i in queue:
            status, body = await call(i)
            if status != expect[0] or expect[1] not in body:
                raise SystemExit(f"request {i}: {status} {body[:300]!r}")

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


FLOORED = ("1", "2", "3", "4")  # the scenarios a floor answers (2: scenario 1's floor, for a child without one)


async def measure(call: Call, expect: tuple[int, bytes], count: int, offset: int, per_call: int) -> dict[str, float]:
    await drive(call, min(count // 5, 2000), offset, expect)  # warm-up
    cpu, wall = time.process_time(), time.perf_counter()
    await drive(call, count, offset + count, expect)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_us_per_request": round(cpu / (count * per_call) * 1e6, 1),
            "wall_us_per_request": round(wall / (count * per_call) * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--scenarios", default="1,2,3,4,5")
    parser.add_argument("--floor", action="store_true", help="also the floors, alternately (scenarios 1-4)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.floor and args.backend != "sqlite":
        parser.error("the floors run on SQLite only")
    data = dataset.cached("small", args.backend)
    working = dataset.working_copy(data, "inprocess")
    floor_copy = dataset.working_copy(data, "inprocess-floor") if args.floor else None
    settings = ensure_sandbox(working.data_dir, database_url=working.database_url)
    workdir = working.data_dir / "inprocess"
    workdir.mkdir(exist_ok=True)
    app = create_app(settings)
    calls = scenarios(app, data, Layout(working.data_dir), workdir)
    rows = []

    async def run() -> None:
        floor_calls = None
        if floor_copy is not None:
            import floor  # bench/floor.py: its app and one worker's state, made here as its lifespan would

            ensure_sandbox(floor_copy.data_dir)  # the same sandbox facts as the service's copy (its signing key)
            os.environ[floor.DATA_DIR_ENV] = str(floor_copy.data_dir.resolve())
            floor.FLOOR.append(floor.Floor(floor_copy.data_dir, asyncio.get_running_loop()))
            floor_calls = scenarios(floor.app, data, Layout(floor_copy.data_dir), workdir)
        gc.collect()
        gc.freeze()  # as the servers do once started (server.settled, the floor's lifespan)
        offset = 0
        for key in args.scenarios.split(","):
            call, status, marker = calls[key]
            per_call = 2 if key == "5" else 1
            count = args.requests // per_call
            row: dict[str, Any] = {"scenario": key, "requests": count * per_call,
                                   **await measure(call, (status, marker), count, offset, per_call)}
            offset += 2 * count
            if floor_calls is not None and key in FLOORED:
                floor_call, status, marker = floor_calls[key]
                floor_row = await measure(floor_call, (status, marker), count, offset, per_call)
                offset += 2 * count
                row["floor_cpu_us_per_request"] = floor_row["cpu_us_per_request"]
                row["floor_over_service"] = round(floor_row["cpu_us_per_request"] / row["cpu_us_per_request"], 3)
            rows.append(row)

    try:
        asyncio.run(run())
    finally:
        app.state.services.store.close()
        working.drop()
        if floor_copy is not None:
            floor_copy.drop()
    print(f"{'scenario':>8} {'requests':>9} {'CPU µs/req':>11} {'wall µs/req':>12} {'floor µs':>9} "
          f"{'floor/service':>14}")
    for row in rows:
        print(f"{row['scenario']:>8} {row['requests']:>9} {row['cpu_us_per_request']:>11} "
              f"{row['wall_us_per_request']:>12} {row.get('floor_cpu_us_per_request', '-'):>9} "
              f"{row.get('floor_over_service', '-'):>14}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
