"""Instructions a request, counted by valgrind's cachegrind: the steady figure on a shared host.

    PYTHONPATH=src:bench .venv/bin/python bench/instructions.py [--app service|floor|both] [--scenario 1]
        [--counts 300,800] [--warmup 300] [--keep DIR]

Runs ``inprocess.py``'s scenario (its requests, 32 at a time on one event loop, on a working copy of the small
SQLite set) in a child process under ``valgrind --tool=cachegrind --cache-sim=no``, once for each request
count, and prints the difference of the total instructions over the difference of the counts: start-up,
imports and the warm-up (the same in both runs) cancel, and what is left is the instructions of one request,
every thread included (the loop's, the commit thread's). Repeat runs agree to well under 1%; timings do not.
``--keep DIR`` keeps the cachegrind files (``cg_annotate DIR/service-800.out`` for where they go: subtract
the smaller run's for one request's share).

(The child: ``instructions.py --child APP SCENARIO WARMUP COUNT``, which only runs the requests.)
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

BENCH = Path(__file__).resolve().parent


def child(app_name: str, scenario: str, warmup: int, count: int) -> None:
    import dataset
    import inprocess

    from safeguarding.app import create_app
    from safeguarding.sandbox.setup import ensure_sandbox
    from safeguarding.settings import Layout

    data = dataset.cached("small", "sqlite")
    working = dataset.working_copy(data, f"instructions-{app_name}-{os.getpid()}")
    workdir = working.data_dir / "inprocess"
    workdir.mkdir(exist_ok=True)
    settings = ensure_sandbox(working.data_dir)
    closing: Any = None

    async def run() -> None:
        nonlocal closing
        if app_name == "floor":
            import floor

            os.environ[floor.DATA_DIR_ENV] = str(working.data_dir.resolve())
            floor.FLOOR.append(floor.Floor(working.data_dir, asyncio.get_running_loop()))
            closing = floor.FLOOR[0]
            app: Any = floor.app
        else:
            app = create_app(settings)
            closing = app.state.services.store
        call, status, marker = inprocess.scenarios(app, data, Layout(working.data_dir), workdir)[scenario]
        gc.collect()
        gc.freeze()
        await inprocess.drive(call, warmup, 0, (status, marker))
        await inprocess.drive(call, count, warmup, (status, marker))

    try:
        asyncio.run(run())
    finally:
        if closing is not None:
            closing.close()
        working.drop()


def instructions(app_name: str, scenario: str, warmup: int, count: int, keep: Path | None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = (keep or Path(tmp)) / f"{app_name}-{count}.out"
        env = {**os.environ, "PYTHONPATH": f"{BENCH.parent / 'src'}:{BENCH}"}
        command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}",
                   sys.executable, __file__, "--child", app_name, scenario, str(warmup), str(count)]
        subprocess.run(command,  # noqa: S603 - fixed arguments
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        summary = re.search(r"^summary:\s+(\d+)", out.read_text(), re.MULTILINE)
        if summary is None:
            raise SystemExit(f"no summary in {out}")
        return int(summary.group(1))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", choices=("service", "floor", "both"), default="both")
    parser.add_argument("--scenario", default="1", choices=("1", "2", "3", "4"))
    parser.add_argument("--counts", default="300,800")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    low, high = (int(c) for c in args.counts.split(","))
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    figures = {}
    for app_name in ("service", "floor") if args.app == "both" else (args.app,):
        first, second = (instructions(app_name, args.scenario, args.warmup, n, args.keep) for n in (low, high))
        figures[app_name] = (second - first) / (high - low)
        print(f"{app_name}: {first:,} at {low}, {second:,} at {high}: {figures[app_name]:,.0f} instructions a request",
              flush=True)
    if len(figures) == 2:
        print(f"floor / service: {figures['floor'] / figures['service']:.3f}")


if __name__ == "__main__":
    main()
