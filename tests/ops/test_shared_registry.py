"""Two nodes (two ``serve`` processes with data dirs of their own) on one PostgreSQL database: a revocation made
with ``safeguarding systems revoke`` on one node is in force on both within seconds, without touching the other
node's files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from ..api.test_fgm_dstu2 import message
from ..pg import create_database, drop_database
from ..support import Server, free_port

GP_ASID = "047192794544"  # the sandbox's clinical system, registered for every FGM-IS DSTU2 interaction
GIRL = "9990000018"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    url = create_database()
    root = tmp_path_factory.mktemp("nodes")
    first = Server(root / "one", free_port(), root / "one.log", database_url=url).start()
    # The second node: a copy of the first's configuration (the same CA, keys and systems.json), as a
    # deployment gives every node the same files; from here on each has its own.
    shutil.copytree(root / "one", root / "two", ignore=shutil.ignore_patterns("audit-*", "server.json", "*.db*"))
    second = Server(root / "two", free_port(), root / "two.log", database_url=url).start()
    yield first, second
    second.stop()
    first.stop()
    drop_database(url)


def _query(node: Server, cert: tuple[str, str]) -> httpx.Response:
    with node.client(cert) as client:
        return client.post(f"{node.base}/fhir/fgm/query", content=message("query", GIRL),
                           headers={"Content-Type": "text/xml; charset=utf-8"})


def test_a_revocation_on_one_node_applies_on_every_node(nodes: tuple[Server, Server]) -> None:
    first, second = nodes
    cert = first.system_cert(GP_ASID)
    assert [_query(node, cert).status_code for node in nodes] == [200, 200]
    second_file = (second.data_dir / "systems.json").read_bytes()

    revoked = subprocess.run([sys.executable, "-m", "safeguarding", "systems", "revoke", "--data-dir",
                              str(first.data_dir), "--database-url", str(first.database_url), "--cert", cert[0],
                              "--reason", "test"], capture_output=True, text=True, timeout=60)
    assert revoked.returncode == 0, revoked.stderr

    deadline = time.monotonic() + 15  # the nodes look every second; generous slack on a loaded host
    statuses: list[int] = []
    while time.monotonic() < deadline:
        statuses = [_query(node, cert).status_code for node in nodes]
        if statuses == [403, 403]:
            break
        time.sleep(0.5)
    assert statuses == [403, 403]
    refused = _query(second, cert)
    assert b"ASID_CHECK_FAILED" in refused.content and b"has been revoked" in refused.content
    assert (second.data_dir / "systems.json").read_bytes() == second_file  # nothing copied by hand

    listed = subprocess.run([sys.executable, "-m", "safeguarding", "systems", "list", "--json", "--data-dir",
                             str(second.data_dir), "--database-url", str(second.database_url)],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and '"reason": "test"' in listed.stdout
