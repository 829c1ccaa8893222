"""The composition root chooses, once, how units of work run: the server's services get the store's event-loop
view (group commit), everything else the store itself (a transaction per unit). Nothing guesses from where it
is called."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx

from safeguarding.app import build_services, create_app
from safeguarding.sandbox.setup import ensure_sandbox
from safeguarding.store.event_loop import EventLoopStore
from safeguarding.store.sql import SqlStore


def test_the_command_line_services_use_the_store_itself(tmp_path: Path) -> None:
    services = build_services(ensure_sandbox(tmp_path / "sandbox"))
    try:
        assert isinstance(services.store, SqlStore) and services.serving is services.store
        assert services.fgm._store is services.store and services.cpis._store is services.store
        assert services.auditor._store is services.store
    finally:
        services.store.close()


def test_the_servers_services_and_web_pages_group_commit(tmp_path: Path) -> None:
    app = create_app(ensure_sandbox(tmp_path / "sandbox"))
    services = app.state.services
    try:
        assert isinstance(services.serving, EventLoopStore) and services.serving.store is services.store
        assert services.fgm._store is services.serving and services.cpis._store is services.serving
        assert services.auditor._store is services.serving
        opened = _counted(services.store)
        status = anyio.run(_start_page, app)
        assert status == 200
        # The page view's audit event went through the writer's batch (the APIs' path), not a transaction of its own.
        assert opened == {"batch": 1, "own": 0}
    finally:
        services.store.close()


def _counted(store: SqlStore) -> dict[str, int]:
    opened = {"batch": 0, "own": 0}
    batch, transaction = store._open_batch, store.transaction

    def open_batch() -> Any:
        opened["batch"] += 1
        return batch()

    def own_transaction() -> Any:
        opened["own"] += 1
        return transaction()

    store._open_batch = open_batch  # type: ignore[method-assign]
    store.transaction = own_transaction  # type: ignore[method-assign]
    return opened


async def _start_page(app: Any) -> int:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as client:
        return (await client.get("/web/")).status_code


def test_a_worker_with_no_outbound_service_configured_loads_no_http_client(tmp_path: Path) -> None:
    """A worker's memory (the benchmark's RSS target): the HTTP client library, and what its optional command
    line pulls in where installed, is loaded only when an identity provider, PDS or the national service is
    configured. The sandbox configures none; its token verifier and web sign-in are still built."""
    settings_dir = tmp_path / "sandbox"
    ensure_sandbox(settings_dir)
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from safeguarding.app import create_app\n"
        "from safeguarding.sandbox.setup import ensure_sandbox\n"
        f"app = create_app(ensure_sandbox(Path({str(settings_dir)!r})))\n"
        "app.state.services.store.close()\n"
        "print(sorted(m for m in ('httpx', 'httpcore', 'safeguarding.security.jwks', 'safeguarding.web.oidc',"
        " 'safeguarding.pds.client') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['safeguarding.security.jwks', 'safeguarding.web.oidc']"
