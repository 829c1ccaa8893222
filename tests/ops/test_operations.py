"""Production guarantees, shown on real processes: several workers on one PostgreSQL or SQLite, SIGKILL under
write load, graceful shutdown, concurrent schema upgrades, metrics."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from ..pg import create_database, drop_database
from ..support import Server, flag_body, free_port, removal_body

JSON = "application/fhir+json"


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def workers_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two server processes sharing one port and one database: PostgreSQL, or the sandbox's SQLite file (whose
    writers queue on the writer lock beside it, store/writer_lock.py)."""
    url = create_database() if request.param == "postgresql" else None
    server = Server(tmp_path_factory.mktemp("workers"), free_port(), tmp_path_factory.mktemp("logs") / "w.log",
                    database_url=url, extra_args=("--workers", "2")).start()
    yield server
    server.stop()
    if url is not None:
        drop_database(url)


def _worker_pids(server: Server, requests: int = 40) -> set[int]:
    with server.client() as client:
        for _ in range(requests):
            client.get(f"{server.base}/_ping", headers={"Connection": "close"})
    pids = {json.loads(line)["pid"] for line in server.log_path.read_text().splitlines()
            if line.startswith("{") and "Application startup complete" in line}
    return pids


def test_two_worker_processes_serve(workers_server: Server) -> None:
    assert len(_worker_pids(workers_server)) == 2


def _extensions(pid: int) -> set[str]:
    """The compiled extension modules a process has loaded (its mapped ``*.so`` files, by name)."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {Path(line.split()[-1]).name.split(".")[0] for line in maps if ".so" in line.rsplit("/", 1)[-1]}


def test_the_supervisor_is_a_lean_process_and_the_workers_hold_the_service(workers_server: Server) -> None:
    """serve --workers replaces itself (same pid) with safeguarding.supervisor, which never imports the service:
    none of the XML, SQL, FHIR-model or cryptography extensions the workers load is in its memory."""
    assert workers_server.process is not None
    supervisor = workers_server.process.pid
    command = Path(f"/proc/{supervisor}/cmdline").read_bytes().split(b"\0")
    assert command[1:3] == [b"-m", b"safeguarding.supervisor"]
    service = {"etree", "_pydantic_core", "_rust"}  # lxml, the FHIR models, cryptography
    assert not service & _extensions(supervisor)
    workers = _worker_pids(workers_server)
    assert len(workers) == 2
    for worker in workers:
        assert service <= _extensions(worker)
        assert Path(f"/proc/{worker}/status").read_text().count(f"PPid:\t{supervisor}\n") == 1


def test_fifty_concurrent_creates_across_processes_give_one_indicator(workers_server: Server) -> None:
    child = workers_server.add_patient()
    token = workers_server.token()
    body = json.dumps(flag_body(child))

    def create(_: int) -> httpx.Response:
        with workers_server.client() as client:  # a connection each: spread over both workers
            return client.post(f"{workers_server.fgm}/Flag", content=body,
                               headers={"Authorization": f"Bearer {token}", "Content-Type": JSON})

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(create, range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [400] * 49
    refusals = [r.json()["issue"][0]["diagnostics"] for r in responses if r.status_code == 400]
    assert set(refusals) == {"Flag value was already set"}
    [indicator] = workers_server.history(child)
    created = next(r.json() for r in responses if r.status_code == 201)
    assert indicator.id == created["id"]

    def remove(_: int) -> int:
        with workers_server.client() as client:
            return client.put(f"{workers_server.fgm}/Flag/{created['id']}",
                              content=json.dumps(removal_body(created)),
                              headers={"Authorization": f"Bearer {token}", "Content-Type": JSON}).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        removal_statuses = sorted(pool.map(remove, range(50)))
    assert removal_statuses == [200] + [400] * 49
    [removed] = workers_server.history(child)
    assert removed.status.value == "entered-in-error" and removed.version == 2
    verify = subprocess.run([sys.executable, "-m", "safeguarding", "audit", "verify", "--data-dir",
                             str(workers_server.data_dir)], capture_output=True, text=True, env=workers_server.env)
    assert verify.returncode == 0, verify.stdout


def test_metrics_aggregate_across_workers(workers_server: Server) -> None:
    token = workers_server.token()
    for _ in range(10):
        with workers_server.client() as client:
            assert client.get(f"{workers_server.fgm}/Flag", params={"patient:identifier": "9990000018"},
                              headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with workers_server.client() as client:
        response = client.get(f"{workers_server.base}/_metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    line = next(line for line in response.text.splitlines() if line.startswith(
        'safeguarding_requests_total{api="fgm-r4",interaction="search",outcome="OK",status="200"}'))
    assert float(line.rsplit(" ", 1)[1]) >= 10
    assert "safeguarding_request_duration_seconds_bucket" in response.text
    assert "safeguarding_store_errors_total" in response.text
    assert "9990000018" not in response.text


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkill_under_write_load_loses_no_acknowledged_write(backend: str, tmp_path: Path) -> None:
    url = create_database() if backend == "postgresql" else None
    server = Server(tmp_path / "data", free_port(), tmp_path / "server.log", database_url=url).start()
    try:
        children = [server.add_patient() for _ in range(400)]
        token = server.token()
        acknowledged: dict[str, str] = {}
        stop = threading.Event()
        lock = threading.Lock()

        def writer(mine: list[str]) -> None:
            with server.client() as client:
                for child in mine:
                    if stop.is_set():
                        return
                    try:
                        response = client.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(child)),
                                               headers={"Authorization": f"Bearer {token}", "Content-Type": JSON})
                    except httpx.HTTPError:
                        return  # the server died mid-request: not acknowledged
                    if response.status_code == 201:
                        with lock:
                            acknowledged[child] = response.json()["id"]

        threads = [threading.Thread(target=writer, args=(children[i::8],)) for i in range(8)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.signal(signal.SIGKILL)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert server.process is not None
        server.process.wait(timeout=10)
        assert len(acknowledged) >= 40

        server.start()  # same data dir and database
        store = server.store()
        try:
            with store.engine.connect() as conn:
                rows = conn.execute(text("SELECT id, nhs_number, status FROM fgm_indicators")).all()
                created = conn.execute(text(
                    "SELECT resource_id FROM audit_events WHERE interaction = 'create' AND status = 201")).all()
        finally:
            store.close()
        stored = {row.nhs_number: row.id for row in rows if row.nhs_number in set(children)}
        # every acknowledged create is there, as acknowledged
        assert {c: stored.get(c) for c in acknowledged} == acknowledged
        # no half writes: every stored indicator has its audit event, and every audited create its indicator
        audited = {row.resource_id for row in created}
        assert set(stored.values()) == audited & set(stored.values()) == audited
        verify = subprocess.run([sys.executable, "-m", "safeguarding", "audit", "verify", "--data-dir",
                                 str(server.data_dir)], capture_output=True, text=True, env=server.env)
        assert verify.returncode == 0, verify.stdout
    finally:
        server.stop()
        if url:
            drop_database(url)


def test_graceful_shutdown_finishes_the_request_in_flight(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", free_port(), tmp_path / "server.log").start()
    child = server.add_patient()
    body = json.dumps(flag_body(child)).encode()
    head = (f"POST /fgm/FHIR/R4/Flag HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.token()}\r\n"
            f"Content-Type: {JSON}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    context = server.tls()
    with socket.create_connection(("127.0.0.1", server.port)) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(head + body[:20])
        time.sleep(0.5)  # the request is now in flight
        server.signal(signal.SIGTERM)
        time.sleep(0.5)
        tls.sendall(body[20:])
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 201 Created"), response[:200]
    assert server.process is not None
    # uvicorn finishes shutting down, then re-raises the signal so the exit status says what stopped it
    assert server.process.wait(timeout=40) in (0, -signal.SIGTERM)
    log = server.log_path.read_text()
    assert "Waiting for application shutdown." in log and "Finished server process" in log
    assert len(server.history(child)) == 1
    with pytest.raises((httpx.HTTPError, ssl.SSLError, OSError)):
        httpx.get(f"{server.base}/_ping", verify=server.tls(), timeout=2)


def test_db_upgrade_from_several_nodes_at_once() -> None:
    url = create_database()
    try:
        env = {**Server(Path("."), 0, Path("x")).env, "SAFEGUARDING_DATABASE_URL": url}
        processes = [subprocess.Popen([sys.executable, "-m", "safeguarding", "db", "upgrade"], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outputs = [p.communicate(timeout=120) for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0, 0], outputs
        revisions = {json.loads(out)["revision"] for out, _ in outputs}
        assert len(revisions) == 1 and None not in revisions
    finally:
        drop_database(url)


def test_fifty_concurrent_cpis_uploads_across_processes_give_one_plan(workers_server: Server) -> None:
    from ..api.cpis_helpers import batch, careplan, outcomes, upload

    child = workers_server.add_patient()
    body = batch(careplan(child, "CPP"))

    def send(_: int) -> list[tuple[str, str]]:
        return outcomes(upload(workers_server, body))

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = [entry for result in pool.map(send, range(50)) for entry in result]
    # an upload is an upsert: one creates the plan, the 49 others update that same plan
    assert sorted(status for status, _ in results) == ["200 OK"] * 49 + ["201 Created"]
    assert {code for _, code in results} == {"CPR06"}
    store = workers_server.store()
    try:
        with store.engine.connect() as conn:
            plans = conn.execute(text("SELECT count(*) FROM cpis_plans WHERE nhs_number = :n"), {"n": child}).scalar()
    finally:
        store.close()
    assert plans == 1
