from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from safeguarding.sandbox.scenarios import SLOW_ENV

from ..conftest import ARTIFACTS
from ..support import Server, free_port

SLOW_SECONDS = 1.5  # the sandbox's slow answer in these tests (10 s by default)


@pytest.fixture(scope="session")
def supplier_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A sandbox of its own (the suppliers' scenarios and clients write to its audit trail), with a short
    slow answer."""
    ARTIFACTS.mkdir(exist_ok=True)
    running = Server(tmp_path_factory.mktemp("supplier"), free_port(), ARTIFACTS / "server-supplier.log")
    running.log_path.write_bytes(b"")
    before = os.environ.get(SLOW_ENV)
    os.environ[SLOW_ENV] = str(SLOW_SECONDS)
    try:
        running.start()
    finally:
        if before is None:
            os.environ.pop(SLOW_ENV, None)
        else:
            os.environ[SLOW_ENV] = before
    yield running
    running.stop()
