"""Files that hold patient data or secrets are 0600 in 0700 directories, whoever opens them and whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from safeguarding.cli_systems import write_entries
from safeguarding.fileutil import private_dir
from safeguarding.security.registry import SystemRegistry, save_registry
from safeguarding.store.sql import SqlStore, make_engine, upgrade_schema

from ..support import Server

PUBLIC = {".pem"}  # certificates (not their keys) and nothing else may be readable by others


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture()
def open_umask() -> Iterator[None]:
    """A caller with the usual umask (022), as the SMSP or an embedding program may have."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_a_new_sqlite_database_and_its_directory_are_private(tmp_path: Path) -> None:
    private_dir(tmp_path / "new" / "deeper")
    path = tmp_path / "new" / "deeper" / "smsp.db"  # as the SMSP's default database path (the SMSP opens it so)
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade_schema(engine)
    finally:
        engine.dispose()
    store = SqlStore.open(f"sqlite:///{path}", b"k" * 32)
    try:
        store.run(lambda tx: tx.lock_audit_head())  # a write transaction: the writer lock, the WAL
        assert _mode(path) == 0o600
        for beside in path.parent.iterdir():
            assert _mode(beside) == 0o600, beside.name
        assert {p.name for p in path.parent.iterdir()} >= {"smsp.db", "smsp.db-wal", "smsp.db-shm"}
    finally:
        store.close()
    assert _mode(tmp_path / "new") == 0o700
    assert _mode(tmp_path / "new" / "deeper") == 0o700


@pytest.mark.usefixtures("open_umask")
def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    make_engine(f"sqlite:///{path}").dispose()
    assert _mode(path) == 0o600


def test_the_sandbox_data_dir_holds_nothing_others_can_read(sqlite_server: Server) -> None:
    found = [p for p in sqlite_server.data_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in found) and any(p.name.endswith(".key") for p in found)
    for path in found:
        if path.suffix not in PUBLIC:
            assert _mode(path) & 0o077 == 0, f"{path.relative_to(sqlite_server.data_dir)} is {oct(_mode(path))}"
    for directory in [p for p in sqlite_server.data_dir.rglob("*") if p.is_dir()]:
        assert _mode(directory) & 0o077 == 0, f"{directory} is {oct(_mode(directory))}"


def test_the_system_registry_is_written_private_whatever_the_umask(tmp_path: Path) -> None:
    """A registry written from code running under a permissive umask (a test, an embedding application): the
    file is still 0600, replaced whole (no half-written file for a server that re-reads it)."""
    path = tmp_path / "registry" / "systems.json"
    old = os.umask(0o022)
    try:
        save_registry(path, [{"asid": "1", "ods": "A", "kind": "clinical-system", "interactions": []}])
        save_registry(path, [])
        write_entries(path, [])  # what `safeguarding systems add|remove|revoke` write
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["systems.json"]  # no spare left behind
    assert SystemRegistry.load(path) is not None
