"""The sandbox for a person at a terminal: console logs without library chatter, a start-up banner whose
dev-token + curl pair works as pasted, --tls-name, dev-token --user, and sandbox reset."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest

from safeguarding.security.certs import server_names
from safeguarding.settings import sandbox_settings
from safeguarding.store.sql import SqlStore

from ..support import free_port
from .helpers import clean_env, cli

BANNER_END = "nhs-number|9990000018'"


@dataclass
class Sandbox:
    data_dir: Path
    port: int
    output: list[str]


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out


@contextmanager
def _started(data_dir: Path, port: int, *options: str, until: str = BANNER_END) -> Iterator[Sandbox]:
    """``serve --sandbox`` with ``options``, its output read until a line ends with ``until``."""
    process = subprocess.Popen([sys.executable, "-m", "safeguarding", "serve", "--sandbox", "--data-dir",
                                str(data_dir), "--port", str(port), *options],
                               env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.rstrip().endswith(until):
            break
    try:
        assert lines and lines[-1].endswith(until), "\n".join(lines)
        yield Sandbox(data_dir, port, lines)
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data_dir = tmp_path_factory.mktemp("sandbox") / "data"
    with _started(data_dir, free_port(), "--log-format", "console", "--tls-name", "sandbox.example",
                  "--tls-name", "10.9.8.7") as started:
        yield started


def _paste_first_query(sandbox: Sandbox) -> subprocess.CompletedProcess[str]:
    start = next(i for i, line in enumerate(sandbox.output) if line.strip().startswith("TOKEN=$("))
    pasted = "\n".join(line.strip() for line in sandbox.output[start:start + 3])
    venv_bin = str(Path(sys.executable).parent)
    return subprocess.run(["/bin/bash", "-c", pasted], capture_output=True, text=True, timeout=60,
                          env=clean_env(PATH=f"{venv_bin}:/usr/bin:/bin"))


def test_console_logs_are_short_lines_without_library_chatter(sandbox: Sandbox) -> None:
    text = "\n".join(sandbox.output)
    assert "(library message)" not in text and "alembic" not in text and not text.lstrip().startswith("{")
    [starting] = [line for line in sandbox.output if " starting " in line]
    assert re.fullmatch(rf"\d\d:\d\d:\d\d info  starting  event=SERVER_STARTING host=127\.0\.0\.1 "
                        rf"port={sandbox.port} workers=1", starting), starting


def test_the_banner_says_where_everything_is(sandbox: Sandbox) -> None:
    banner = "\n".join(sandbox.output[sandbox.output.index("The safeguarding sandbox is ready."):])
    base = f"https://127.0.0.1:{sandbox.port}"
    assert f"  base URL   {base}" in banner
    assert f"  CA file    {sandbox.data_dir.resolve() / 'tls' / 'ca.pem'}" in banner
    assert f"  web UI     {base}/" in banner
    for number in ("9990000018", "9990000026", "9990000123"):
        assert f"    {number}  " in banner


def test_the_banners_dev_token_and_curl_pair_works_as_pasted(sandbox: Sandbox) -> None:
    result = _paste_first_query(sandbox)
    assert result.returncode == 0, result.stderr
    assert '"resourceType":"Bundle"' in result.stdout and '"total":1' in result.stdout, result.stdout


def test_tls_name_adds_names_to_the_server_certificate(sandbox: Sandbox) -> None:
    names = server_names(sandbox.data_dir / "tls" / "server.pem")
    assert set(names) == {"localhost", "sandbox.example", "127.0.0.1", "::1", "10.9.8.7"}


def test_dev_token_shortcuts_for_the_sandbox_users(sandbox: Sandbox) -> None:
    result = cli("dev-token", "--data-dir", str(sandbox.data_dir), "--user", "erin")
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
    assert claims["nhsid_useruid"] == "555021941103" and claims["name"] == "Dr Erin Sandbox"
    assert claims["nhsid_nrbac_roles"][0]["activity_codes"] == ["B0107"]
    overridden = cli("dev-token", "--data-dir", str(sandbox.data_dir), "--user", "amy", "--activities", "B0370")
    roles = jwt.decode(overridden.stdout.strip(), options={"verify_signature": False})["nhsid_nrbac_roles"]
    assert roles[0]["activity_codes"] == ["B0370"] and roles[0]["person_roleid"] == "555021936108"
    unknown = cli("dev-token", "--data-dir", str(sandbox.data_dir), "--user", "zed")
    assert unknown.returncode == 2 and "'zed' is not a sandbox user: give one of amy, ben, cal, erin, gus" in \
        unknown.stderr
    incomplete = cli("dev-token", "--data-dir", str(sandbox.data_dir), "--user-id", "1")
    assert incomplete.returncode == 2
    assert "give --user NAME (one of amy, ben, cal, erin, gus) or --role-profile-id, --org, --activities" in \
        incomplete.stderr


def test_dev_token_without_a_sandbox_names_the_data_dir_option(tmp_path: Path) -> None:
    result = cli("dev-token", "--user", "amy", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"Error: no sandbox signing key in {tmp_path.resolve() / '.safeguarding'}: "
                                     "give the sandbox's --data-dir, or run 'safeguarding serve --sandbox' first")


def test_sandbox_reset_returns_to_the_shipped_data_set(tmp_path: Path) -> None:
    import uuid
    from datetime import date

    from safeguarding.domain.fgm import Actor, Indicator, IndicatorStatus
    from safeguarding.sandbox.setup import ensure_sandbox

    data_dir = tmp_path / "reset"
    settings = ensure_sandbox(data_dir)
    store = SqlStore.open(settings.database_url, settings.audit_key.value)
    try:
        [seeded] = store.read_history("9990000018")
        shipped_head = store.audit_head()
        with store.transaction() as tx:  # what a user did in the sandbox
            tx.insert_indicator(Indicator(id=str(uuid.uuid4()), nhs_number="9990000026", assessment_date=date.today(),
                                          status=IndicatorStatus.ACTIVE, created_at="2026-01-01T00:00:00Z",
                                          created_by=Actor(user_id="someone", org_code="RR8")))
        assert len(store.read_history("9990000026")) == 1
    finally:
        store.close()
    refused = subprocess.run([sys.executable, "-m", "safeguarding", "sandbox", "reset", "--data-dir", str(data_dir)],
                             input="n\n", capture_output=True, text=True, env=clean_env())
    assert refused.returncode == 1 and "Aborted" in refused.stderr
    key_before = (data_dir / "keys" / "token-signing.pem").read_bytes()
    result = cli("sandbox", "reset", "--data-dir", str(data_dir), "--yes")
    assert result.returncode == 0, result.stderr
    assert (data_dir / "keys" / "token-signing.pem").read_bytes() == key_before  # tokens issued before still work
    store = SqlStore.open(sandbox_settings(data_dir).database_url, settings.audit_key.value)
    try:
        assert store.read_history("9990000026") == []
        [indicator] = store.read_history("9990000018")
        assert indicator.status is IndicatorStatus.ACTIVE and indicator.id != seeded.id  # seeded afresh
        assert store.audit_head()[0] == shipped_head[0]
    finally:
        store.close()


def test_sandbox_reset_on_postgresql(tmp_path: Path) -> None:
    from safeguarding.sandbox.setup import ensure_sandbox

    from ..pg import create_database, drop_database

    url = create_database()
    try:
        settings = ensure_sandbox(tmp_path / "pg", database_url=url)
        store = SqlStore.open(url, settings.audit_key.value)
        try:
            [seeded] = store.read_history("9990000018")
        finally:
            store.close()
        result = cli("sandbox", "reset", "--data-dir", str(tmp_path / "pg"), "--database-url", url, "--yes")
        assert result.returncode == 0, result.stderr
        store = SqlStore.open(url, settings.audit_key.value)
        try:
            [indicator] = store.read_history("9990000018")
            assert indicator.id != seeded.id
        finally:
            store.close()
    finally:
        drop_database(url)


def test_with_several_workers_the_banner_is_printed_too(tmp_path: Path) -> None:
    with _started(tmp_path / "data", free_port(), "--log-format", "console", "--workers", "2") as started:
        result = _paste_first_query(started)
    assert result.returncode == 0, result.stderr
    assert '"resourceType":"Bundle"' in result.stdout and '"total":1' in result.stdout, result.stdout


def test_json_logs_get_no_banner_and_no_nhs_number(tmp_path: Path) -> None:
    """Off a terminal (a container's log collector) the banner, which lists the test patients, is not printed."""
    with _started(tmp_path / "data", free_port(), "--log-format", "json", until='"event":"SANDBOX_READY"}') as started:
        text = "\n".join(started.output)
    assert "The safeguarding sandbox is ready." not in text and "Bearer" not in text
    assert not re.search(r"\b999\d{7}\b", text)
    assert all(line.startswith("{") for line in started.output), text
