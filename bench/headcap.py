"""What the audit chain head lets through: processes appending batches of audit events to one PostgreSQL chain.

Each process opens the store as ``serve`` does and runs, for ``--seconds``, the PostgreSQL group-commit
writer's own batch transaction (``SqlStore._batch_transaction``: BEGIN with the head's lock, the batch's
events hashed and inserted, the head moved, COMMIT) with ``--batch`` events each, back to back. No HTTP, no
request work: only the serial part every node's batches share. Run with 1 and with 2 processes (each pinned
to its own core with ``taskset`` when there are enough), it shows how far the head lets a second node add
throughput, and the events a second it caps a deployment at on this machine's PostgreSQL.

    python bench/headcap.py DATA_DIR DATABASE_URL [--processes N] [--batch B] [--seconds S] [--pin]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
import uuid
from pathlib import Path

from safeguarding.domain.audit import AuditEvent
from safeguarding.settings import Layout
from safeguarding.store.sql import SqlStore


def append(data_dir: str, url: str, batch: int, seconds: float, cpu: int | None,
           results: multiprocessing.Queue[tuple[int, int, float]]) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    store = SqlStore.open(url, Layout(Path(data_dir)).audit_key.read_bytes())
    events = batches = 0
    held = 0.0
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.monotonic()
            with store._batch_transaction() as tx:  # the writer's own transaction (store/sql.py)
                for _ in range(batch):
                    tx.append_audit(AuditEvent(recorded_at="2026-12-07T06:00:00.000000Z", api="fgm-r4",
                                               interaction="search", status=200, outcome="OK",
                                               request_id=str(uuid.uuid4()), user_id="555021935107",
                                               nhs_number="9900000803"))
            held += time.monotonic() - started
            events, batches = events + batch, batches + 1
    finally:
        store.close()
    results.put((events, batches, held))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir")
    parser.add_argument("database_url")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--pin", action="store_true", help="process i on CPU i mod the CPUs this one may use")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    results: multiprocessing.Queue[tuple[int, int, float]] = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=append, args=(
        args.data_dir, args.database_url, args.batch, args.seconds, cpus[i % len(cpus)] if args.pin else None, results))
        for i in range(args.processes)]
    for worker in workers:
        worker.start()
    figures = [results.get(timeout=args.seconds + 60) for _ in workers]
    for worker in workers:
        worker.join()
    events = sum(f[0] for f in figures)
    batches = sum(f[1] for f in figures)
    print(json.dumps({"processes": args.processes, "batch": args.batch, "events_per_s": round(events / args.seconds),
                      "batches_per_s": round(batches / args.seconds),
                      "ms_per_batch": round(1000 * sum(f[2] for f in figures) / max(batches, 1), 2)}))


if __name__ == "__main__":
    main()
