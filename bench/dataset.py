"""Benchmark data sets, built by bulk inserts straight into the schema and cached under bench/.cache.

A data set is a sandbox data dir (keys, certificates, system registry, audit key) plus its database:
for SQLite the file inside the data dir, for PostgreSQL a template database. Runs never touch the
cache: each run gets a copy (a file copy, or ``CREATE DATABASE ... TEMPLATE``), so write scenarios and
interrupted runs cannot dirty it. The audit events form a valid chain under the data dir's audit key.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from safeguarding.audit.chain import GENESIS, link_hash
from safeguarding.domain.audit import AuditEvent
from safeguarding.domain.nhs_number import check_digit
from safeguarding.sandbox.setup import ensure_sandbox
from safeguarding.settings import Layout
from safeguarding.store import schema as t

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".cache"
_CHECKOUT = hashlib.sha256(str(CACHE.resolve()).encode()).hexdigest()[:6]  # see _pg_database
MIGRATIONS = BENCH.parent / "src" / "safeguarding" / "store" / "migrations" / "versions"
DATASET_VERSION = "3"  # bump when this file changes what it builds (2: events hashed as AuditEvent.fields();
# 3: an access history for the children with a plan)
ACCESSES_PER_PLAN = 4  # earlier unscheduled accesses to each child with a plan, by other clinicians
ADMIN_URL = os.environ.get("SAFEGUARDING_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CHUNK = 50_000
SAMPLE = 20_000  # NHS numbers handed to the load generator per list
WRITE_POOL = 4_000  # girls kept without an indicator or plan, for the create/remove cycles
ACTOR = json.dumps({"user_id": "555021935107", "role_profile_id": "555021936108", "org_code": "RR8"})


@dataclass(frozen=True)
class Size:
    patients: int
    indicators: int
    audit_events: int
    plans: int


SIZES = {
    "small": Size(patients=10_000, indicators=2_000, audit_events=10_000, plans=1_000),
    "large": Size(patients=1_000_000, indicators=200_000, audit_events=5_000_000, plans=50_000),
}


@dataclass(frozen=True)
class Dataset:
    """A built data set: where it is, and the NHS numbers the scenarios use."""

    name: str
    backend: str
    data_dir: Path
    database_url: str | None  # PostgreSQL template database; None for SQLite (the file in data_dir)
    lists: dict[str, list[str]]
    counts: dict[str, int]
    build_seconds: float


def nhs_numbers(count: int) -> Iterator[str]:
    """Valid NHS numbers from 990 000 000x upwards (clear of the sandbox's and the tests' 999 range)."""
    stem = 990_000_000
    made = 0
    while made < count:
        digit = check_digit(str(stem))
        if digit is not None:
            yield f"{stem}{digit}"
            made += 1
        stem += 1


def _schema_key() -> str:
    digest = hashlib.sha256(DATASET_VERSION.encode())
    for path in sorted(MIGRATIONS.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


def _admin() -> Engine:
    url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg")
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def pg_url(database: str) -> str:
    return make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)


def pg_exists(database: str) -> bool:
    engine = _admin()
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": database}).first()
    finally:
        engine.dispose()
    return found is not None


def pg_execute(statement: str) -> None:
    engine = _admin()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _pg_database(name: str) -> str:
    """A cached data set's template database: named for this checkout too, so two checkouts benchmarking
    on one PostgreSQL never use each other's (whose audit key is not theirs)."""
    return f"{name}-{_CHECKOUT}".replace("-", "_")


def cached(size: str, backend: str) -> Dataset:
    """The cached data set for size and backend, building it first when missing or stale."""
    name = f"{backend}-{size}-{_schema_key()}"
    root = CACHE / name
    manifest = root / "manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        if backend == "sqlite" or pg_exists(_pg_database(name)):
            return _load(name, backend, root, data)
    return _build(name, size, backend, root)


def _load(name: str, backend: str, root: Path, data: dict[str, Any]) -> Dataset:
    lists = {key: (root / f"{key}.txt").read_text().split() for key in data["lists"]}
    return Dataset(name=name, backend=backend, data_dir=root / "data",
                   database_url=pg_url(_pg_database(name)) if backend == "postgresql" else None,
                   lists=lists, counts=data["counts"], build_seconds=data["build_seconds"])


def _build(name: str, size_name: str, backend: str, root: Path) -> Dataset:
    size = SIZES[size_name]
    started = time.monotonic()
    print(f"building data set {name} ({size}) ...", file=sys.stderr, flush=True)
    shutil.rmtree(root, ignore_errors=True)
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    database_url = None
    if backend == "postgresql":
        database = _pg_database(name)
        pg_execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        pg_execute(f'CREATE DATABASE "{database}"')
        database_url = pg_url(database)
    env = dict(os.environ, **({"SAFEGUARDING_DATABASE_URL": database_url} if database_url else {}))
    subprocess.run([sys.executable, "-m", "safeguarding", "db", "upgrade", "--data-dir", str(data_dir)],  # noqa: S603
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ensure_sandbox(data_dir, database_url=database_url)  # keys, certificates, registry, sandbox patients
    url = database_url or f"sqlite:///{Layout(data_dir).database}"
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg") if database_url else url,
                           poolclass=NullPool)
    try:
        lists, counts = _fill(engine, size, Layout(data_dir).audit_key.read_bytes())
        _finish(engine)
    finally:
        engine.dispose()
    for key, values in lists.items():
        (root / f"{key}.txt").write_text("\n".join(values) + "\n")
    elapsed = round(time.monotonic() - started, 1)
    (root / "manifest.json").write_text(json.dumps({"size": size_name, "backend": backend, "counts": counts,
                                                    "lists": sorted(lists), "build_seconds": elapsed}, indent=2))
    print(f"built {name} in {elapsed} s", file=sys.stderr, flush=True)
    return _load(name, backend, root, json.loads((root / "manifest.json").read_text()))


def _fill(engine: Engine, size: Size, audit_key: bytes) -> tuple[dict[str, list[str]], dict[str, int]]:
    rng = random.Random(6)  # noqa: S311 - reproducible test data, not secrets
    today = date.today()
    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    numbers = list(nhs_numbers(size.patients))
    genders = rng.choices(["female", "male", "unknown"], weights=[60, 35, 5], k=len(numbers))
    girls = [n for n, g in zip(numbers, genders, strict=True) if g == "female"]
    rng.shuffle(girls)
    with_indicator = girls[: size.indicators]
    write_pool = girls[size.indicators: size.indicators + WRITE_POOL]
    taken = set(with_indicator) | set(write_pool)
    others = [n for n in numbers if n not in taken]
    with_plan = rng.sample(others, min(size.plans, len(others)))
    plan_set = set(with_plan)
    no_indicator = [n for n in others if n not in plan_set]

    def patients() -> Iterator[dict[str, Any]]:
        for number, gender in zip(numbers, genders, strict=True):
            born = today - timedelta(days=rng.randint(365, 16 * 365))
            yield {"nhs_number": number, "verified": True, "birth_date": born, "gender": gender, "security": "U",
                   "gp_ods_code": "Y12345", "deceased": False, "superseded_by": None, "updated_at": stamp}

    def indicators() -> Iterator[dict[str, Any]]:
        for number in with_indicator:
            yield {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "nhs_number": number,
                   "assessment_date": today - timedelta(days=rng.randint(1, 300)), "status": "active", "version": 1,
                   "created_at": stamp, "created_by": ACTOR, "removed_at": None, "removed_by": None,
                   "removal_reason": None}

    def plans() -> Iterator[dict[str, Any]]:
        for i, number in enumerate(with_plan):
            yield {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "authority_ods": f"LA{i % 150:03d}",
                   "nhs_number": number, "plan_type": "CPP" if i % 3 else "LAC",
                   "start_date": today - timedelta(days=rng.randint(1, 700)), "end_date": None,
                   "authority_name": f"Local Authority {i % 150}", "office_phone": "0207 333 7777",
                   "emergency_phone": "0207 333 8888", "withdrawn_at": None, "version": 1, "created_at": stamp,
                   "changed_at": stamp, "changed_by": "200000000200", "request_id": None}

    def accesses() -> Iterator[dict[str, Any]]:
        # A service in use has an access history (and PostgreSQL's statistics for it, taken by _finish): without
        # one the table's statistics say it is empty, and a statement prepared while they do keeps the plan made
        # for an empty table (a scan of the whole table for the user's last listed access) for the whole run.
        for number in with_plan:
            for k in range(ACCESSES_PER_PLAN):
                at = (now - timedelta(days=rng.randint(2, 400), seconds=rng.randint(0, 86_399))).strftime(
                    "%Y-%m-%dT%H:%M:%S.%fZ")
                user = f"5559{rng.randint(0, 999):08d}"
                yield {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "nhs_number": number,
                       "recorded_at": at, "user_id": user, "listed": k % 2 == 0,
                       "author": json.dumps({"user_id": user, "role_profile_id": "555021936108", "org_code": "RR8"})}

    _insert(engine, t.patients, patients())
    _insert(engine, t.fgm_indicators, indicators())
    _insert(engine, t.cpis_plans, plans())
    _insert(engine, t.cpis_accesses, accesses())
    _append_audit(engine, audit_key, size.audit_events, numbers, now - timedelta(days=400), rng)
    lists = {
        "with_indicator": rng.sample(with_indicator, min(SAMPLE, len(with_indicator))),
        "without_indicator": rng.sample(no_indicator, min(SAMPLE, len(no_indicator))),
        "with_plan": rng.sample(with_plan, min(SAMPLE, len(with_plan))),
        "write_pool": write_pool,
    }
    counts = {"patients": len(numbers), "indicators": len(with_indicator), "plans": len(with_plan),
              "accesses": len(with_plan) * ACCESSES_PER_PLAN,
              "audit_events": size.audit_events}
    return lists, counts


def _insert(engine: Engine, table: Any, rows: Iterator[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    with engine.connect() as conn:
        _sqlite_fast_conn(conn)
        for row in rows:
            batch.append(row)
            if len(batch) == CHUNK:
                conn.execute(insert(table), batch)
                conn.commit()
                batch = []
        if batch:
            conn.execute(insert(table), batch)
            conn.commit()


def _sqlite_fast_conn(conn: Any) -> None:
    """Bulk loading only: no fsync, and a page cache big enough for random index inserts (2 GiB)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.exec_driver_sql("PRAGMA cache_size=-2000000")


_INTERACTIONS = [("fgm-r4", "search", 200, "OK"), ("fgm-r4", "create", 201, "OK"), ("fgm-r4", "remove", 200, "OK"),
                 ("fgm-dstu2", "query", 200, "OK"), ("fgm-dstu2", "query", 404, "NO_RECORD_FOUND"),
                 ("fgm-r4", "search", 400, "INVALID_SEARCH_DATA")]


_EVENT_FIELDS = tuple(AuditEvent.__dataclass_fields__)


def _append_audit(engine: Engine, key: bytes, count: int, numbers: list[str], start: datetime,
                  rng: random.Random) -> None:
    """``count`` events after the current chain head, hashed with the real chain function, head updated."""
    with engine.connect() as conn:
        head = conn.execute(select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == 1)).one()
    seq, prev = int(head.seq), str(head.hash)
    if seq == 0 and prev != GENESIS:
        raise RuntimeError("unexpected audit head")
    base = dict.fromkeys(_EVENT_FIELDS)
    base.update(user_id="555021935107", role_profile_id="555021936108", role_code="S8000:G8000:R8000", org_code="RR8")
    step = timedelta(days=399) / max(count, 1)
    rows: list[dict[str, Any]] = []
    with engine.connect() as conn:
        _sqlite_fast_conn(conn)
        for i in range(count):
            api, interaction, status, outcome = _INTERACTIONS[i % len(_INTERACTIONS)]
            values = dict(base, recorded_at=(start + step * i).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), api=api,
                          interaction=interaction, status=status, outcome=outcome,
                          request_id=f"{rng.getrandbits(128):032x}", nhs_number=numbers[rng.randrange(len(numbers))],
                          system_asid="047192794544" if api == "fgm-dstu2" else None)
            seq += 1
            digest = link_hash(key, seq, prev, AuditEvent(**values))  # its fields() as the service hashes them
            rows.append({"seq": seq, "prev_hash": prev, "hash": digest, **values})
            prev = digest
            if len(rows) == CHUNK:  # committed as it goes: a build that dies leaves no manifest, so no cache
                conn.execute(insert(t.audit_events), rows)
                conn.commit()
                rows = []
        if rows:
            conn.execute(insert(t.audit_events), rows)
        conn.execute(update(t.audit_head).where(t.audit_head.c.id == 1).values(seq=seq, hash=prev))
        conn.commit()


def _finish(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


@dataclass
class Working:
    """A run's own copy of a data set."""

    data_dir: Path
    database_url: str | None

    def drop(self) -> None:
        if self.database_url:
            pg_execute(f'DROP DATABASE IF EXISTS "{make_url(self.database_url).database}" WITH (FORCE)')
        shutil.rmtree(self.data_dir, ignore_errors=True)


def working_copy(dataset: Dataset, label: str) -> Working:
    target = CACHE / "runs" / f"{dataset.name}-{label}"
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(dataset.data_dir, target)
    if dataset.database_url is None:
        return Working(target, None)
    database = f"sgbench_run_{_CHECKOUT}_{label}"
    pg_execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    pg_execute(f'CREATE DATABASE "{database}" TEMPLATE "{make_url(dataset.database_url).database}"')
    return Working(target, pg_url(database))
