"""The optional Medplum peer (``--peer medplum``): scenario 1's search against @medplum/fhir-router 5.2
with its in-memory repository, behind a minimal Node 22 https server (bench/medplum/server.mjs), on the
same TLS certificate, load generator and NHS numbers. It authenticates nothing and audits nothing."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import procs

from safeguarding.settings import Layout


class Run(Protocol):
    """What the peer needs of one of bench.py's runs (named here, so the two scripts import one way only)."""

    @property
    def workdir(self) -> Path: ...

    @property
    def size(self) -> str: ...

    @property
    def layout(self) -> Layout: ...

HERE = Path(__file__).resolve().parent / "medplum"
NODE = HERE / "node_modules" / ".bin" / "node"


def install() -> None:
    if not NODE.exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],  # noqa: S603, S607
                       cwd=HERE, check=True)


def measure(run: Run, log: Path, at: Callable[[int, procs.Proc], dict[str, Any]], numbers_in: list[str],
            name: str) -> list[dict[str, Any]]:
    """Seed the peer with a Patient and a Flag for each of ``numbers_in`` and measure scenario 1's search."""
    install()
    numbers = run.workdir / f"{name}-numbers.txt"
    numbers.write_text("\n".join(numbers_in) + "\n")
    port = procs.free_port()
    tls = run.layout.tls
    server = procs.Proc.start("medplum", [str(NODE), str(HERE / "server.mjs"), str(port), str(tls / "server.pem"),
                                          str(tls / "server.key"), str(numbers)], log / f"{run.size}-{name}.log")
    try:
        procs.wait_https(port, "/fgm/FHIR/R4/metadata", server, timeout=300)
        return [at(port, server)]
    finally:
        server.stop()
