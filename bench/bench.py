"""The benchmark: builds (or reuses) a data set, starts the real server and a ceiling on the same stack,
drives both with wrk at 32 connections, prints one table and writes the figures as JSON.

    bench/run [--size small|large|small,large] [--backend sqlite|postgresql|both] [--duration 10]
              [--scenarios 1,2,3,4,5,6] [--floor] [--peer medplum] [--profile] [--json PATH]

``--floor`` also measures the floors (SQLite only): bench/floor.py, scenario 1's search doing only the minimum
work a compliant, audited search needs, in lean Python on the same stack, and (with scenario 4 in the run)
bench/floor_cpis.py, scenario 4's unscheduled access, and (with scenario 3 in the run) bench/floor_dstu2.py, scenario
3's DSTU2 query through the same mutual-TLS tunnel, as rows of their own after the ceiling's. Scenario 3's floor
must answer the benchmark's message as the service does (status and body, but for the response's own id and
timestamp): the row's ``floor_same_answer`` says whether it did.

See docs/performance.md for what each scenario does and what the figures mean.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dataset
import procs
import report
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from safeguarding.security.dev_tokens import issue_dev_token
from safeguarding.settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER, Layout
from safeguarding.store import schema as t

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
CONNECTIONS = 32
NHS = "https://fhir.nhs.uk/Id/nhs-number%7C"
FLAG = "/fgm/FHIR/R4/Flag"
CARETEAM = "/cpis/FHIR/R4/CareTeam"
QUERY_EVENT = "urn:nhs:names:services:clinicals-sync:FGMQuery_2_0"
GP_ASID = "047192794544"
SLICE = 1000  # write-pool girls per wrk run (runs never share a girl: a cut-off cycle may leave one flagged)


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    script: str  # read.lua or write.lua
    via_tunnel: bool = False  # mutual TLS through stunnel
    target: float | None = None  # ratio to the ceiling the issue asks for


SCENARIOS = {
    "1": Scenario("1", "R4 GET /Flag, child with an indicator", "read.lua", target=0.60),
    "2": Scenario("2", "R4 GET /Flag, child without one", "read.lua", target=0.40),
    "3": Scenario("3", "DSTU2 query over mutual TLS", "read.lua", via_tunnel=True, target=0.25),
    "4": Scenario("4", "CP-IS GET /CareTeam, unscheduled", "read.lua", target=0.25),
    "5": Scenario("5", "R4 create + remove (per cycle)", "write.lua", target=0.10),
    "6": Scenario("6", "mix: 90% queries, 10% writes", "write.lua"),
}
CEILING = Scenario("ceiling", "ceiling: fixed Bundle, same stack", "read.lua")
CEILING_MTLS = Scenario("ceiling-mtls", "ceiling through the mTLS tunnel", "read.lua", via_tunnel=True)
FLOOR = Scenario("floor", "floor: the minimum audited search, lean Python", "read.lua")
FLOOR_3 = Scenario("floor-3", "floor: the minimum audited DSTU2 query", "read.lua", via_tunnel=True)
FLOOR_4 = Scenario("floor-4", "floor: the minimum audited CP-IS access", "read.lua")
PEER = Scenario("medplum-1", "Medplum peer: scenario 1's search", "read.lua")
PEER_ONE = Scenario("medplum-1-one", "Medplum peer, one Flag only", "read.lua")


@dataclass
class Run:
    """One backend x size: the working copy, its server's port and the files handed to wrk."""

    size: str
    backend: str
    data: dataset.Dataset
    working: dataset.Working
    workdir: Path
    duration: int
    warmup: int
    profile_mode: str = "gil"
    connections: int = CONNECTIONS
    pool_next: int = 0

    @property
    def layout(self) -> Layout:
        return Layout(self.working.data_dir)

    def tokens(self, activities: list[str], count: int = 20) -> list[str]:
        return [issue_dev_token(self.layout.signing_key, issuer=SANDBOX_ISSUER, audience=SANDBOX_AUDIENCE,
                                user_id=f"5550{i:08d}", role_profile_id=f"5551{i:08d}", org_code="RR8",
                                activities=activities, expires_in=6 * 3600)
                for i in range(count)]

    def write_slice(self) -> list[str]:
        pool = self.data.lists["write_pool"]
        if self.pool_next + SLICE > len(pool):
            raise RuntimeError("write pool exhausted: fewer write runs, or a bigger WRITE_POOL in dataset.py")
        chosen = pool[self.pool_next:self.pool_next + SLICE]
        self.pool_next += SLICE
        return chosen

    def params(self, name: str, scalars: dict[str, str], lists: dict[str, list[str]]) -> Path:
        path = self.workdir / f"{name}.params"
        lines = [f"threads {min(2, self.connections)}"] + [f"{k} {v}" for k, v in scalars.items()]
        lines += [f"@{k} {v}" for k, values in lists.items() for v in values]
        path.write_text("\n".join(lines) + "\n")
        return path

    def audit_seq(self) -> int:
        url = self.working.database_url or f"sqlite:///{self.layout.database}"
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return int(conn.execute(select(t.audit_head.c.seq).where(t.audit_head.c.id == 1)).scalar_one())
        finally:
            engine.dispose()


def dstu2_body(run: Run) -> Path:
    """The NHS guide's query example, as the tests adjust it, with {{id}} and {{nhs}} placeholders."""
    text = (ROOT / "tests" / "fixtures" / "dstu2" / "query-v2-request.xml").read_text()
    text = text.replace("047192794540", GP_ASID).replace("9999999999", "{{nhs}}")
    text = text.replace("14daadee-26e1-4d6a-9e6a-7f4af9b58870", "{{id}}")
    text = text.replace("2015-07-04T09:10:13+00:00", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00"))
    path = run.workdir / "dstu2-query.xml"
    path.write_text(text)
    return path


def flag_bodies(run: Run) -> tuple[Path, Path]:
    code = {"coding": [{"system": "http://snomed.info/sct", "code": "902961000000107"}]}
    subject = {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "{{nhs}}"}}
    period = {"start": (date.today() - timedelta(days=3)).isoformat()}
    create = {"resourceType": "Flag", "status": "active", "code": code, "subject": subject, "period": period}
    remove = {"resourceType": "Flag", "id": "{{id}}", "status": "entered-in-error", "extension": [{
        "url": "https://fhir.nhs.uk/England/StructureDefinition/Extension-England-FlagRemovalReason",
        "valueCoding": {"system": "https://fhir.nhs.uk/England/CodeSystem/England-FGMRemovalReason", "code": "0"}}],
        "code": code, "subject": subject, "period": period}
    paths = run.workdir / "create.json", run.workdir / "remove.json"
    paths[0].write_text(json.dumps(create, separators=(",", ":")))
    paths[1].write_text(json.dumps(remove, separators=(",", ":")))
    return paths


def scenario_params(run: Run, scenario: Scenario, label: str) -> Path:
    lists = run.data.lists
    search = {"path": f"{FLAG}?patient:identifier={NHS}{{{{nhs}}}}"}
    dstu2 = {"method": "POST", "path": "/fhir/fgm/query", "body_file": str(dstu2_body(run))}
    dstu2_headers = ["Content-Type: text/xml; charset=utf-8", f'SOAPAction: "{QUERY_EVENT}"']
    reader = run.tokens(["B0370"])
    if scenario.key in ("1", "ceiling", "floor", "medplum-1"):
        return run.params(label, search, {"nhs": lists["with_indicator"], "token": reader})
    if scenario.key == "medplum-1-one":
        return run.params(label, search, {"nhs": lists["with_indicator"][:1], "token": reader})
    if scenario.key == "2":
        return run.params(label, search, {"nhs": lists["without_indicator"], "token": reader})
    if scenario.key in ("3", "ceiling-mtls", "floor-3"):
        return run.params(label, dstu2, {"nhs": lists["with_indicator"], "header": dstu2_headers})
    if scenario.key in ("4", "floor-4"):
        return run.params(label, {"path": f"{CARETEAM}?patient:identifier={NHS}{{{{nhs}}}}"},
                          {"nhs": lists["with_plan"], "token": run.tokens(["B0107"]),
                           "header": ["IsUnscheduledAccessEvent: true"]})
    create, remove = flag_bodies(run)
    scalars = {"flag_path": FLAG, "create_file": str(create), "remove_file": str(remove),
               "search_path": search["path"], "read_fraction": "0.9" if scenario.key == "6" else "0"}
    return run.params(label, scalars, {"write": run.write_slice(), "token": run.tokens(["B0370", "B0380"]),
                                       "found": lists["with_indicator"], "none": lists["without_indicator"]})


Paired = Callable[[bool], dict[str, Any]]


def measure(run: Run, scenario: Scenario, url: str, server: procs.Proc | None, audited: bool,
            profile: Path | None = None, paired: Paired | None = None) -> dict[str, Any]:
    if run.warmup:
        procs.wrk(url, scenario.script, scenario_params(run, scenario, f"{scenario.key}-warmup"), run.warmup,
                  run.connections)
    pair = paired(scenario.via_tunnel) if paired is not None else {}  # the ceiling again, just before
    params = scenario_params(run, scenario, scenario.key)
    before = run.audit_seq() if audited else 0
    spy = None
    if profile is not None and server is not None:
        name = f"{run.backend}-{run.size}-{scenario.key}-{run.profile_mode}.txt"
        spy = procs.py_spy(server.pid, run.duration, profile / name, run.profile_mode)
    with procs.RssSampler(server.pid if server else 0) as rss:
        figures = procs.wrk(url, scenario.script, params, run.duration, run.connections)
    if spy is not None:
        spy.popen.wait(timeout=60)
        spy.stop()
    seconds = figures["duration_us"] / 1e6
    done = figures["cycles"] if scenario.key == "5" else figures["requests"]
    errors = figures["errors"]
    row: dict[str, Any] = {
        "scenario": scenario.key, "title": scenario.title, "backend": run.backend, "size": run.size,
        "rps": round(done / seconds, 1), "requests": figures["requests"],
        **{f"{p}_ms": round(figures["latency_us"][p] / 1000, 2) for p in ("p50", "p90", "p99", "max")},
        "errors": sum(errors.values()), "error_detail": errors, "statuses": figures["statuses"],
        "rss_mb": rss.peak_mb if server else None, "server_cpu_percent": rss.cpu_percent if server else None,
        "host_steal_percent": rss.steal_percent, **pair,
    }
    if server is not None and done:
        # CPU a request: the server's, and PostgreSQL's processes' over the same period (zero-ish on SQLite),
        # steadier than throughput on a shared host (time waiting for a core is not counted).
        row["server_cpu_us_per_request"] = round(rss.cpu_seconds / done * 1e6, 1)
        row["database_cpu_us_per_request"] = round(rss.database_cpu_seconds / done * 1e6, 1)
    if audited:
        time.sleep(1.5)  # let requests still in flight when wrk stopped finish and audit
        delta = run.audit_seq() - before
        row.update(audit_delta=delta, audit_lost=max(0, figures["requests"] - delta))
    return row


class Side:
    """One size of one backend, set up for the run: its working copy, the ceiling (plain and through the mTLS
    tunnel, measured first, then kept up, idle, to be measured again before each scenario), the floor, and the
    service, started once and driven through every scenario."""

    def __init__(self, size: str, backend: str, args: argparse.Namespace) -> None:
        self.args = args
        data = dataset.cached(size, backend)
        self.label = f"{backend}-{size}"
        working = dataset.working_copy(data, self.label.replace("-", "_"))
        workdir = dataset.CACHE / "runs" / f"{self.label}-files"
        workdir.mkdir(parents=True, exist_ok=True)
        self.run = Run(size, backend, data, working, workdir, args.duration, args.warmup, args.profile_mode,
                       args.connections)
        self.workers = args.workers or 2
        layout = self.run.layout
        self.cert = layout.systems / f"{GP_ASID}.pem", layout.systems / f"{GP_ASID}.key"
        self.log = dataset.CACHE / "logs"
        self.profile = Path(args.profile) if args.profile else None
        if self.profile:
            self.profile.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        self.urls: dict[bool, str] = {}
        self.running: list[procs.Proc] = []  # stopped in reverse order by stop()
        self.server: procs.Proc | None = None
        self.port = 0
        self.floor_answers: dict[str, tuple[int, str, str]] = {}  # scenario 3's floor's, to compare (dstu2_answers)

    def open(self) -> None:
        """The ceiling (and its tunnel) started and measured, the floor measured, the service started."""
        port = procs.free_port()
        ceiling = self._started(procs.Proc.start(
            "ceiling", [str(PYTHON), str(BENCH / "ceiling.py"), str(self.run.working.data_dir), str(port),
                        str(self.workers)],
            self.log / f"{self.label}-ceiling.log", env=_env(PYTHONPATH=str(BENCH))))
        procs.wait_https(port, "/", ceiling)
        self.urls[False] = f"https://127.0.0.1:{port}"
        self.rows.append(measure(self.run, CEILING, self.urls[False], ceiling, audited=False))
        if "3" in self.args.scenarios:
            tunnel_port = procs.free_port()
            self._started(procs.stunnel("ceiling", tunnel_port, port, *self.cert, self.run.layout.tls / "ca.pem",
                                        self.run.workdir))
            self.urls[True] = f"http://127.0.0.1:{tunnel_port}"
            self.rows.append(measure(self.run, CEILING_MTLS, self.urls[True], ceiling, False))
        if self.args.floor:
            print(f"  {self.label}: floor ...", file=sys.stderr, flush=True)
            self.rows.extend(_floor(self.run, self.workers, self.log, self.profile, self.paired, self.args.scenarios,
                                    self.cert, self.floor_answers))
        self.port = procs.free_port()
        database = ["--database-url", self.run.working.database_url] if self.run.working.database_url else []
        self.server = self._started(procs.Proc.start(
            "server", [str(PYTHON), "-m", "safeguarding", "serve", "--sandbox", "--data-dir",
                       str(self.run.working.data_dir), "--port", str(self.port), "--workers", str(self.workers),
                       *database],
            self.log / f"{self.label}-server.log", env=_env()))
        procs.wait_https(self.port, "/_ping", self.server)

    def _started(self, proc: procs.Proc) -> procs.Proc:
        self.running.append(proc)
        return proc

    def paired(self, tunnelled: bool) -> dict[str, Any]:
        """The ceiling (through the tunnel for a tunnelled scenario) for --pair seconds, now: the host's load
        drifts over minutes, so each scenario's ratio is taken against the ceiling of the same minute."""
        if not self.args.pair:
            return {}
        reference = CEILING_MTLS if tunnelled else CEILING
        figures = procs.wrk(self.urls[tunnelled], reference.script,
                            scenario_params(self.run, reference, f"{reference.key}-paired"), self.args.pair,
                            self.run.connections)
        return {"ceiling_paired_rps": round(figures["requests"] / (figures["duration_us"] / 1e6), 1)}

    def scenario(self, key: str) -> None:
        """One scenario against the service, its row added to this side's."""
        if self.server is None:
            raise RuntimeError("Side.open() first")
        scenario, run = SCENARIOS[key], self.run
        print(f"  {self.label}: scenario {key} ...", file=sys.stderr, flush=True)
        if key == "4" and not _cpis_available(run, self.port):
            self.rows.append({"scenario": "4", "title": scenario.title, "backend": run.backend, "size": run.size,
                              "available": False, "note": "not available: GET /cpis/FHIR/R4/CareTeam is 404"})
            return
        if not scenario.via_tunnel:
            self.rows.append(measure(run, scenario, f"https://127.0.0.1:{self.port}", self.server, True,
                                     self.profile, self.paired))
            return
        same = None
        if key == "3" and self.floor_answers:
            same = _same_answers(self.floor_answers, dstu2_answers(run, self.port, self.cert))
        tunnel_port = procs.free_port()
        tunnel = procs.stunnel("service", tunnel_port, self.port, *self.cert, run.layout.tls / "ca.pem", run.workdir)
        try:
            self.rows.append(measure(run, scenario, f"http://127.0.0.1:{tunnel_port}", self.server, True,
                                     self.profile, self.paired))
        finally:
            tunnel.stop()
        if same is not None:
            self.rows[-1]["floor_same_answer"] = same

    def stop(self) -> None:
        """Stop what runs: the service, the tunnel, the ceiling (the last started first)."""
        while self.running:
            self.running.pop().stop()

    def drop(self) -> None:
        if not self.args.keep:
            self.run.working.drop()


def run_backend(backend: str, sizes: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every size of one backend set up side by side, then each scenario run on every size in turn: a scenario's
    figures for the sizes are taken a minute apart, under the same host load, so "p50 large <= 1.25 x small"
    compares the data sets, not the host's drift over a run that lasts half an hour."""
    sides: list[Side] = []
    try:
        for size in sizes:
            print(f"{backend} {size}: data set ...", file=sys.stderr, flush=True)
            sides.append(Side(size, backend, args))
        # Building or copying a data set leaves gigabytes of dirty pages (the large set's copy, PostgreSQL's database
        # made from its template). Written back while the first scenarios run, they compete with every commit's fsync:
        # on a freshly built large set the first rows measured (the floors) ran at ~0.6 of their speed a run later
        # (docs/performance.md, round 14). Written now, before anything is measured.
        os.sync()
        for side in sides:
            side.open()
        for key in args.scenarios:
            for side in sides:
                side.scenario(key)
        for side in sides:
            side.stop()
            side.rows.append(_verify(side.run))
            if args.peer == "medplum" and backend == args.backends[0]:
                side.rows.extend(_medplum(side.run, side.log))
        return [row for side in sides for row in side.rows]
    finally:
        for side in sides:
            side.stop()
            side.drop()


def _floor(run: Run, workers: int, log: Path, profile: Path | None, paired: Paired, scenarios: list[str],
           cert: tuple[Path, Path], answers: dict[str, tuple[int, str, str]]) -> list[dict[str, Any]]:
    """The floors (floor.py, floor_cpis.py, floor_dstu2.py) on the run's copy, as many workers as the ceiling,
    measured as scenarios 1, 3 and 4 are (the CP-IS floor when 4 is in the run; the DSTU2 floor when 3 is,
    through its own mutual-TLS tunnel, its answers to the benchmark's message kept in ``answers``). Their audit
    events join the copy's chain, which the service then carries on (and ``audit verify`` checks)."""
    wanted = [FLOOR] + ([FLOOR_3] if "3" in scenarios else []) + ([FLOOR_4] if "4" in scenarios else [])
    if run.backend != "sqlite":
        return [{"scenario": floor.key, "title": floor.title, "backend": run.backend, "size": run.size,
                 "available": False, "note": "not measured: the floor writes SQLite only"} for floor in wanted]
    port = procs.free_port()
    floor = procs.Proc.start("floor", [str(PYTHON), str(BENCH / "floor.py"), str(run.working.data_dir), str(port),
                                       str(workers)],
                             log / f"{run.backend}-{run.size}-floor.log", env=_env(PYTHONPATH=str(BENCH)))
    tunnel: procs.Proc | None = None
    try:
        procs.wait_https(port, "/", floor)
        rows = []
        for scenario in wanted:
            url = f"https://127.0.0.1:{port}"
            if scenario.via_tunnel:
                answers.update(dstu2_answers(run, port, cert))
                tunnel_port = procs.free_port()
                tunnel = procs.stunnel("floor", tunnel_port, port, *cert, run.layout.tls / "ca.pem", run.workdir)
                url = f"http://127.0.0.1:{tunnel_port}"
            rows.append(measure(run, scenario, url, floor, audited=True, profile=profile, paired=paired))
            if tunnel is not None:
                tunnel.stop()
                tunnel = None
        return rows
    finally:
        if tunnel is not None:
            tunnel.stop()
        floor.stop()


CHECK_MESSAGE_ID = "5d0c1f4e-6a55-4d1b-9f57-2b1c3a4d5e6f"


def dstu2_answers(run: Run, port: int, cert: tuple[Path, Path]) -> dict[str, tuple[int, str, str]]:
    """The benchmark's DSTU2 message for a child with an indicator and one without, posted over mutual TLS
    (the GP system's certificate, no tunnel): each answer's status, content type and body, the body with the
    response's own message id and timestamp blanked (they differ on every answer)."""
    template = dstu2_body(run).read_text()
    found: dict[str, tuple[int, str, str]] = {}
    for kind in ("with_indicator", "without_indicator"):
        body = template.replace("{{id}}", CHECK_MESSAGE_ID).replace("{{nhs}}", run.data.lists[kind][0])
        status, content_type, answer = procs.https_post(
            port, "/fhir/fgm/query", body.encode(), {"Content-Type": "text/xml; charset=utf-8",
                                                     "SOAPAction": f'"{QUERY_EVENT}"'}, cert)
        text = answer.decode()
        own = re.search(r'<id value="([^"]+)"/>', text)
        if own:
            text = text.replace(own[1], "{{response-id}}")
        found[kind] = (status, content_type, re.sub(r'<timestamp value="[^"]*"/>', "<timestamp/>", text))
    return found


def _same_answers(floor: dict[str, tuple[int, str, str]], service: dict[str, tuple[int, str, str]]) -> bool:
    same = floor == service
    if not same:
        for kind in service:
            if floor.get(kind) != service[kind]:
                print(f"  scenario 3's floor answers {kind} unlike the service:\n    floor   {floor.get(kind)}\n"
                      f"    service {service[kind]}", file=sys.stderr, flush=True)
    return same


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SAFEGUARDING_DATABASE_URL", None)
    env.update(extra)
    return env


def _cpis_available(run: Run, port: int) -> bool:
    token = run.tokens(["B0107"], count=1)[0]
    number = run.data.lists["with_plan"][0]
    status = procs.https_status(port, f"{CARETEAM}?patient:identifier={NHS}{number}",
                                {"Authorization": f"Bearer {token}", "IsUnscheduledAccessEvent": "true"})
    return status != 404


def _verify(run: Run) -> dict[str, Any]:
    """``safeguarding audit verify`` on the run's copy: the chain must still be intact."""
    env = _env(**({"SAFEGUARDING_DATABASE_URL": run.working.database_url} if run.working.database_url else {}))
    started = time.monotonic()
    out = subprocess.run([str(PYTHON), "-m", "safeguarding", "audit", "verify", "--data-dir",  # noqa: S603
                          str(run.working.data_dir)], env=env, capture_output=True, text=True, check=False)
    result = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {"ok": False}
    return {"scenario": "verify", "backend": run.backend, "size": run.size, "audit_verify": result,
            "verify_seconds": round(time.monotonic() - started, 1)}


def _medplum(run: Run, log: Path) -> list[dict[str, Any]]:
    """The peer twice: with a Flag for every child of scenario 1 (the comparison the issue asks for), and
    with one Flag searched again and again (its best case: the in-memory repository scans every Flag)."""
    import medplum

    rows = []
    children = run.data.lists["with_indicator"]
    for scenario, numbers in ((PEER, children), (PEER_ONE, children[:1])):
        def at(port: int, server: procs.Proc, scenario: Scenario = scenario) -> dict[str, Any]:
            return measure(run, scenario, f"https://127.0.0.1:{port}", server, audited=False)

        rows.extend(medplum.measure(run, log, at, numbers, scenario.key))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", help="small, large, or small,large")
    parser.add_argument("--backend", default="both", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per scenario (not measured)")
    parser.add_argument("--scenarios", default="1,2,3,4,5,6")
    parser.add_argument("--workers", type=int, default=0, help="server processes (default 2)")
    parser.add_argument("--pair", type=int, default=3, metavar="S",
                        help="seconds of the ceiling measured again just before each scenario, its ratio's reference "
                             "(0: the ceiling measured first)")
    parser.add_argument("--floor", action="store_true",
                        help="also measure the floors, the scenarios' minimum audited work in lean Python (SQLite): "
                             "bench/floor.py (scenario 1), floor_dstu2.py (with 3), floor_cpis.py (with 4)")
    parser.add_argument("--peer", choices=["medplum"], default=None)
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="also sample the server with py-spy into DIR (perturbs the figures)")
    parser.add_argument("--profile-mode", choices=["gil", "cpu", "wall"], default="gil",
                        help="gil: the thread holding the GIL (Python CPU); cpu: running threads; "
                             "wall: waiting threads too (locks, fsync, sleeps)")
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help="wrk connections (default 32)")
    parser.add_argument("--keep", action="store_true", help="keep the run's copy of the data set")
    parser.add_argument("--json", default=None, help="where to write the figures (default bench/.cache/results/)")
    args = parser.parse_args()
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {sorted(SCENARIOS)}")
    sizes = [s.strip() for s in args.size.split(",")]
    if any(s not in dataset.SIZES for s in sizes):
        parser.error(f"--size takes {', '.join(dataset.SIZES)}")
    args.backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    started = datetime.now(timezone.utc)
    rows: list[dict[str, Any]] = []
    for backend in args.backends:
        rows.extend(run_backend(backend, sizes, args))
    rows = report.with_ratios(rows)
    figures = {"started": started.isoformat(timespec="seconds"), "machine": machine(), "connections": args.connections,
               "duration_s": args.duration, "warmup_s": args.warmup, "profiled": bool(args.profile),
               "sizes": {s: vars(dataset.SIZES[s]) for s in sizes}, "rows": rows,
               "targets": report.targets(rows)}
    out = Path(args.json) if args.json else dataset.CACHE / "results" / f"{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(report.table(rows))
    print(report.targets_text(figures["targets"]))
    print(f"figures: {out}")


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(int(mem) / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version()}


if __name__ == "__main__":
    main()
