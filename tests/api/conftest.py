from __future__ import annotations

import pytest

from ..support import Server


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest) -> Server:
    """Every HTTP test runs against a server on SQLite and one on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_server")  # type: ignore[no-any-return]
