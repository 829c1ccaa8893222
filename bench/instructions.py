"""Instructions a request, counted by valgrind: steady where CPU time and throughput are not on a shared host.

    PYTHONPATH=src:bench .venv/bin/python bench/instructions.py [--scenario 4]
        [--target service|floor|both|pipeline|ceiling|all] [--counts 300,1300] [--warmup 300]
        [--part reader|writer]

For each target it runs ``bench/inprocess.py``'s scenario in process (the same app, requests and working copy of
the small SQLite data set), under ``valgrind --tool=cachegrind --cache-sim=no``, once per request count: a
warm-up of ``--warmup`` requests, then the counted requests. The instructions of every thread (the loop, the
commit thread, SQLite's C) are totalled by valgrind; the difference between two counts over the difference in
requests is what one request costs, with start-up, the data set's copy and warm-up cancelled out (repeat runs
of one version agree within ~1-2%: group-commit batches and the periodic threads follow the host's timing).

``pipeline`` is the service with its audited work taken out: each endpoint still authenticates and authorises
the caller as it does, then answers with the response its handler gave the first time (kept), and nothing is
read, audited or committed. What remains is the request pipeline around the handler (routing, trace ids, the
query string, the token, the role, the greenlet, the response, metrics): the service minus it is what the
audited interaction itself costs (the service layer, the store, the audit chain, group commit, the rendering
of the found resource). ``ceiling`` is ``bench/ceiling.py``'s app (a fixed Bundle, whatever was asked): what the
in-process harness itself costs, in every other target too. ``all`` is the four targets in turn. One
valgrind at a time (it runs at ~1/50 of native speed: ~2 minutes a target). ``--keep DIR`` keeps the
cachegrind files (for ``cg_annotate``; the Python frames are the interpreter's C, so use py-spy for where in
Python).

``--part`` counts one piece of scenario 3 alone, for ``service`` and ``floor`` (no app, no request: the piece
called in a loop on the benchmark's message): ``reader`` is the DSTU2 query message read and checked (the service's
``parse_request``, the floor's ``floor_dstu2.Message``), ``writer`` the found answer written (the service's
``render_response``, the floor's template). With ``--target pipeline``, what the service does around them is known.

(``--run`` is the inner mode valgrind starts: one target, one count.)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REFS = re.compile(rb"I\s+refs:\s+([\d,]+)")


def run_once(scenario: str, target: str, warmup: int, count: int) -> None:
    """The inner mode: ``count`` requests of one scenario against the service or its floor, after a warm-up."""
    import dataset
    import inprocess

    from safeguarding.app import create_app
    from safeguarding.sandbox.setup import ensure_sandbox
    from safeguarding.settings import Layout

    data = dataset.cached("small", "sqlite")
    working = dataset.working_copy(data, f"instructions-{target}")
    settings = ensure_sandbox(working.data_dir)
    workdir = working.data_dir / "inprocess"
    workdir.mkdir(exist_ok=True)
    app = None

    async def go() -> None:
        nonlocal app
        if target == "floor":
            import floor

            os.environ[floor.DATA_DIR_ENV] = str(working.data_dir.resolve())
            floor.FLOOR.append(floor.Floor(working.data_dir, asyncio.get_running_loop()))
            served = floor.app
        elif target == "ceiling":
            import ceiling

            served = ceiling.app
        else:
            if target == "pipeline":
                _answer_kept()  # before the app makes its endpoints
            served = app = create_app(settings)
        call, status, marker = inprocess.scenarios(served, data, Layout(working.data_dir), workdir)[scenario]
        if target == "ceiling":
            status, marker = 200, b""  # its one answer, to every scenario
        gc.collect()
        gc.freeze()
        await inprocess.drive(call, warmup, 0, (status, marker))
        await inprocess.drive(call, count, warmup, (status, marker))

    try:
        asyncio.run(go())
    finally:
        if app is not None:
            app.state.services.store.close()
        working.drop()


def _answer_kept() -> None:
    """Every endpoint made from now on answers with the response its handler gave first: its pipeline, the caller's
    authentication and role check included, runs as ever, without the interaction's work (``--target pipeline``)."""
    import copy

    from safeguarding.api.pipeline import ApiRequest, ApiResponse, Endpoint, Handler
    from safeguarding.services.context import RequestContext

    made = Endpoint.__init__

    def kept_answer(handler: Handler) -> Handler:
        kept: list[ApiResponse] = []

        def answer(request: ApiRequest, ctx: RequestContext) -> ApiResponse:
            if not kept:
                kept.append(copy.deepcopy(handler(request, ctx)))
                return kept[0]
            first = kept[0]
            ctx.audited = True  # nothing to audit: nothing was done
            return ApiResponse(first.status, first.resource, dict(first.headers), first.body, first.content_type)

        return answer

    def make(self: Endpoint, dialect: Any, interaction: str, handler: Handler, *args: Any, **kwargs: Any) -> None:
        made(self, dialect, interaction, kept_answer(handler), *args, **kwargs)

    Endpoint.__init__ = make


def run_part(part: str, target: str, warmup: int, count: int) -> None:
    """The inner mode of ``--part``: scenario 3's message read, or its found answer written, ``count`` times after a
    warm-up, by the service's code or the floor's."""
    import uuid
    from datetime import date, datetime, timezone

    import floor_dstu2
    from inprocess import GP_ASID, _Workdir, dstu2_body

    from safeguarding.api.dstu2.messages import FoundFlag, Interaction
    from safeguarding.api.dstu2.reader import parse_request
    from safeguarding.api.dstu2.writer import render_response
    from safeguarding.domain.ids import uuid4_text

    with tempfile.TemporaryDirectory() as workdir:
        text = dstu2_body(_Workdir(Path(workdir))).read_text()  # type: ignore[arg-type]
    body = text.replace("{{nhs}}", "9434765919").replace("{{id}}", str(uuid.uuid4())).encode()
    header = parse_request(body, "text/xml").header
    flag = FoundFlag(str(uuid.uuid4()), "9434765919", date(2024, 1, 2))

    def answer() -> bytes:
        return render_response(Interaction.QUERY, header, outcome=None, flag=flag,
                               service_asid=floor_dstu2.SERVICE_ASID, message_id=uuid4_text(),
                               timestamp=datetime.now(timezone.utc), fmt="xml")

    pieces: dict[tuple[str, str], Any] = {
        ("reader", "service"): lambda: parse_request(body, "text/xml"),
        ("reader", "floor"): lambda: floor_dstu2.Message(body),
        ("writer", "service"): answer,
        ("writer", "floor"): lambda: floor_dstu2.found(header.message_id, GP_ASID, flag.flag_id, flag.nhs_number,
                                                       flag.assessment_date.isoformat()),
    }
    piece = pieces[(part, target)]
    for _ in range(warmup + count):
        piece()


def count_instructions(scenario: str, target: str, warmup: int, count: int, keep: Path | None,
                       part: str | None = None) -> int:
    out = (keep or Path(tempfile.gettempdir())) / f"cachegrind.{target}.{part or scenario}.{count}.{os.getpid()}"
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}",
               sys.executable, __file__, "--run", "--scenario", scenario, "--target", target,
               "--warmup", str(warmup), "--counts", str(count), *(["--part", part] if part else [])]
    done = subprocess.run(command, capture_output=True, check=False)  # noqa: S603 - our own command line
    if done.returncode != 0:
        raise SystemExit(f"valgrind failed ({done.returncode}):\n{done.stderr.decode(errors='replace')[-3000:]}")
    if keep is None:
        out.unlink(missing_ok=True)
    found = REFS.search(done.stderr)
    if found is None:
        raise SystemExit("no 'I refs' in valgrind's output")
    return int(found.group(1).replace(b",", b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="4")
    parser.add_argument("--target", choices=("service", "floor", "both", "pipeline", "ceiling", "all"),
                        default="both")
    parser.add_argument("--counts", default="300,1300")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--part", choices=("reader", "writer"), default=None,
                        help="scenario 3's message read or answer written, alone (service and floor)")
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if args.part and args.target not in ("service", "floor", "both"):
        parser.error("--part counts the service's piece and the floor's: --target service, floor or both")
    if args.run:
        if args.part:
            run_part(args.part, args.target, args.warmup, counts[0])
        else:
            run_once(args.scenario, args.target, args.warmup, counts[0])
        return
    low, high = counts
    named = {"both": ("service", "floor"), "all": ("service", "pipeline", "floor", "ceiling")}
    targets = named.get(args.target, (args.target,))
    for target in targets:
        totals = [count_instructions(args.scenario, target, args.warmup, n, args.keep, args.part)
                  for n in (low, high)]
        per = (totals[1] - totals[0]) / (high - low)
        what = f"scenario 3's {args.part}" if args.part else f"scenario {args.scenario}"
        print(f"{what} {target}: {totals[0]:,} @ {low}, {totals[1]:,} @ {high}: "
              f"{per:,.0f} instructions a {'call' if args.part else 'request'}", flush=True)


if __name__ == "__main__":
    main()
