"""The security suite (docs/security.md "How it is tested"): every HTTP test runs on a server on SQLite and one on
PostgreSQL, as tests/api does; some start a server of their own. Hypothesis is deterministic here (derandomize, no
example database), so the suite is repeatable; ``scripts/fuzz`` runs the same tests long and random."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from ..support import Server

settings.register_profile("safeguarding", deadline=None, database=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", deadline=None, database=None, derandomize=False, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow], max_examples=2000)
settings.load_profile(os.environ.get("SAFEGUARDING_HYPOTHESIS_PROFILE", "safeguarding"))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue(f"{request.param}_server")  # type: ignore[no-any-return]
