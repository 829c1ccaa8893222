"""Fixtures for the SMSP's tests: a stand-in national service (``standin.py``) as its own process, its PKI,
and SMSPs stopped at the end of each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from safeguarding.security import certs

from .harness import SMSP_ASID, Smsp, Standin, local_side


@pytest.fixture(scope="module")
def standin_pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A stand-in national CA with its server certificate, the SMSP's national certificate, the local side."""
    root = tmp_path_factory.mktemp("pki")
    national_ca = certs.create_ca(root / "national", "stand-in national CA")
    certs.issue(national_ca, certs.CertPair(root / "national.pem", root / "national.key"), common_name="localhost",
                server_names=("localhost", "127.0.0.1"))
    smsp_out = certs.issue(national_ca, certs.CertPair(root / "smsp-national.pem", root / "smsp-national.key"),
                           common_name=SMSP_ASID, org="X26", client=True)
    return local_side(root) | {"national_ca": national_ca.cert, "smsp_national_cert": smsp_out.cert,
                               "smsp_national_key": smsp_out.key, "national_cert": root / "national.pem",
                               "national_key": root / "national.key"}


@pytest.fixture()
def standin(standin_pki: dict[str, Path], tmp_path: Path) -> Iterator[Callable[[str], Standin]]:
    started: list[Standin] = []

    def start(mode: str) -> Standin:
        started.append(Standin(mode, standin_pki, tmp_path / f"standin-{mode}.log"))
        return started[-1]

    yield start
    for each in started:
        each.stop()


@pytest.fixture()
def smsps() -> Iterator[list[Smsp]]:
    running: list[Smsp] = []
    yield running
    for each in running:
        each.stop()
