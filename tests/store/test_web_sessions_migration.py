"""Migration 0005 (signed-out web sessions in the store) on both stores: a database at 0004 gains the
table, and what an earlier version kept itself (PostgreSQL: the same table in the database; SQLite: a
file of its own beside the database) is kept, so a session signed out before the upgrade stays signed
out after it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import BigInteger, Column, MetaData, String, Table, insert, make_url

from safeguarding.store.sql import SqlStore, make_engine, schema_revision, sqlite_url, upgrade_schema

from .migrated import database_at

KEY = bytes(range(32))


@pytest.fixture(params=["sqlite", "postgresql"])
def url_at_0004(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_at("0004", request.param, tmp_path) as url:
        yield url


def _upgrade(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade_schema(engine)
        assert schema_revision(engine) == "0005"
    finally:
        engine.dispose()


def test_the_migration_adds_the_table(url_at_0004: str) -> None:
    _upgrade(url_at_0004)
    store = SqlStore.open(url_at_0004, KEY)
    try:
        assert not store.web_session_revoked("a" * 64)
        store.run(lambda tx: tx.revoke_web_session("a" * 64, 2_000_000_000, 1_900_000_000))
        assert store.web_session_revoked("a" * 64)
    finally:
        store.close()


def test_what_an_earlier_version_kept_is_kept(url_at_0004: str) -> None:
    # What web/signed_out.py made itself before the store held it: the table in the service's PostgreSQL
    # database, or with SQLite a file of its own beside the database.
    rows = [{"session_hash": "b" * 64, "until": 2_000_000_000}, {"session_hash": "c" * 64, "until": 1}]
    old = Table("web_signed_out_session", MetaData(), Column("session_hash", String(64), primary_key=True),
                Column("until", BigInteger, nullable=False))
    database = make_url(url_at_0004).database
    if url_at_0004.startswith("sqlite"):
        beside = Path(database or "").with_name("old-web-signed-out.sqlite")
        with sqlite3.connect(beside) as conn:
            conn.execute("CREATE TABLE web_signed_out_session (session_hash VARCHAR(64) PRIMARY KEY, "
                         "until BIGINT NOT NULL)")
            conn.executemany("INSERT INTO web_signed_out_session VALUES (:session_hash, :until)", rows)
        conn.close()
    else:
        engine = make_engine(url_at_0004)
        try:
            old.create(engine)
            with engine.begin() as pg:
                pg.execute(insert(old), rows)
        finally:
            engine.dispose()
    _upgrade(url_at_0004)
    store = SqlStore.open(url_at_0004, KEY)
    try:
        assert store.web_session_revoked("b" * 64) and not store.web_session_revoked("a" * 64)
        if url_at_0004.startswith("sqlite"):
            assert not store.web_session_revoked("c" * 64)  # its lifetime had ended: not copied
    finally:
        store.close()


def test_a_stray_file_where_the_old_one_was_does_not_stop_the_upgrade(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "store.db")
    (tmp_path / "store-web-signed-out.sqlite").write_bytes(b"not a database")
    _upgrade(url)
