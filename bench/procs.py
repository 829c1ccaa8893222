"""Processes the benchmark starts (servers, stunnel, wrk, py-spy), and the RSS sampler."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    """A process group we started; stopped by its own id only."""

    name: str
    popen: subprocess.Popen[bytes]
    log: IO[bytes]

    @classmethod
    def start(cls, name: str, args: Sequence[str], log_path: Path, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Proc:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
        popen = subprocess.Popen(list(args), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,  # noqa: S603
                                 start_new_session=True)
        return cls(name, popen, log)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 40) -> None:
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.log.close()


def wait_https(port: int, path: str, proc: Proc, timeout: float = 120) -> None:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early (see {proc.log.name})")
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{proc.name} did not answer within {timeout} s")


def wait_tcp(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def https_status(port: int, path: str, headers: dict[str, str]) -> int:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


def https_post(port: int, path: str, body: bytes, headers: dict[str, str],
               cert: tuple[Path, Path]) -> tuple[int, str, bytes]:
    """POST over mutual TLS, presenting ``cert`` (certificate and key): the status, content type and body."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.load_cert_chain(*cert)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("content-type", ""), response.read()
    finally:
        conn.close()


def stunnel(name: str, listen: int, target: int, cert: Path, key: Path, ca: Path, workdir: Path) -> Proc:
    """A TLS client tunnel presenting a client certificate: plain HTTP in, mutual TLS out."""
    config = workdir / f"stunnel-{name}.conf"
    config.write_text(
        f"foreground = yes\npid =\ndebug = 3\n[{name}]\nclient = yes\naccept = 127.0.0.1:{listen}\n"
        f"connect = 127.0.0.1:{target}\ncert = {cert}\nkey = {key}\nCAfile = {ca}\nverifyChain = yes\n"
        "checkHost = localhost\n")
    proc = Proc.start(f"stunnel-{name}", ["stunnel", str(config)], workdir / f"stunnel-{name}.log")
    wait_tcp(listen)
    return proc


def tree(root: int) -> list[int]:
    """The process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_kib(pid: int) -> int:
    try:
        match = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes, in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def database_pids() -> list[int]:
    """PostgreSQL's processes on this machine (its backends, WAL writer, checkpointer...), by name."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def database_cpu() -> dict[int, float]:
    """CPU seconds of each PostgreSQL process now (a process started later counts from zero)."""
    return {pid: cpu_seconds([pid]) for pid in database_pids()}


def host_cpu() -> tuple[int, int]:
    """The machine's CPU time stolen by the hypervisor and its total, in clock ticks (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


@dataclass
class RssSampler:
    """Peak of the summed resident memory of a process tree, sampled every 100 ms, the CPU it used, and the
    share of the machine's CPU the host stole meanwhile (a busy host: figures to read with care)."""

    root: int
    peak_kib: int = 0
    cpu_percent: float = 0.0
    cpu_seconds: float = 0.0
    database_cpu_seconds: float = 0.0  # PostgreSQL's processes meanwhile (idle, so about zero, with SQLite)
    steal_percent: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: tuple[float, float] = (0.0, 0.0)
    _host: tuple[int, int] = (0, 0)
    _database: dict[int, float] = field(default_factory=dict)

    def __enter__(self) -> RssSampler:
        self._started, self._host = (time.monotonic(), cpu_seconds(tree(self.root))), host_cpu()
        self._database = database_cpu()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        pids = tree(self.root)
        last = time.monotonic()
        while not self._stop.wait(0.1):
            if time.monotonic() - last > 2:
                pids, last = tree(self.root), time.monotonic()
            self.peak_kib = max(self.peak_kib, sum(rss_kib(pid) for pid in pids))

    def __exit__(self, *_: Any) -> None:
        used = cpu_seconds(tree(self.root)) - self._started[1]
        self.cpu_seconds = used
        self.database_cpu_seconds = sum(now - self._database.get(pid, 0.0) for pid, now in database_cpu().items())
        self.cpu_percent = round(100 * used / max(time.monotonic() - self._started[0], 1e-6), 1)
        stolen, total = (now - then for now, then in zip(host_cpu(), self._host, strict=True))
        self.steal_percent = round(100 * stolen / max(total, 1), 1)
        self._stop.set()
        if self._thread:
            self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak_kib / 1024, 1)


def wrk(url: str, script: str, params: Path, seconds: int, connections: int) -> dict[str, Any]:
    """One wrk run (two threads, or one for one connection); the Lua scripts print one BENCH_JSON line."""
    threads = min(2, connections)
    env = dict(os.environ, BENCH_LUA=str(BENCH / "lua"))
    out = subprocess.run(  # noqa: S603
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s",  # noqa: S607
         str(BENCH / "lua" / script), url, "--", str(params)],
        env=env, capture_output=True, text=True, timeout=seconds + 60, check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            return result
    raise RuntimeError(f"wrk gave no figures: {out.stdout[-2000:]} {out.stderr[-2000:]}")


def py_spy(root: int, seconds: int, output: Path, mode: str = "gil") -> Proc:
    """Sample the server (and its worker processes) into collapsed stacks while wrk runs, without pausing
    it. Modes: ``gil`` the thread holding the GIL (where Python CPU goes), ``cpu`` every running thread,
    ``wall`` waiting threads too (locks, I/O, sleeps)."""
    py_spy_bin = BENCH.parent / ".venv" / "bin" / "py-spy"
    args = [str(py_spy_bin), "record", "--format", "raw", "--rate", "100", "--nonblocking", "--subprocesses",
            "--duration", str(seconds), "--output", str(output), "--pid", str(root)]
    extra = {"gil": ["--gil"], "cpu": [], "wall": ["--idle"]}[mode]
    return Proc.start("py-spy", args + extra, output.with_suffix(".log"))
