"""What an operator can get wrong is told in one sentence with what to do, exit status 1, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

from ..support import free_port
from .helpers import cli, example_dir, one_sentence_error


def test_audit_verify_against_an_unreachable_database(tmp_path: Path) -> None:
    url = f"postgresql://safeguarding:topsecret@127.0.0.1:{free_port()}/nothing"
    directory = example_dir(tmp_path)
    for args in (("--config", str(directory / "safeguarding.toml"), "--database-url", url),):
        message = one_sentence_error(cli("audit", "verify", *args))
        assert message.startswith("cannot use the database at postgresql://safeguarding:***@127.0.0.1:"), message
        assert "check that it is running and that --database-url" in message
        assert "topsecret" not in message


def test_db_upgrade_with_a_database_url_of_no_known_kind(tmp_path: Path) -> None:
    message = one_sentence_error(cli("db", "upgrade", "--data-dir", str(tmp_path), "--database-url", "mysql://x/y"))
    assert "database URL must be sqlite:/// or postgresql://" in message


def test_serve_on_a_port_already_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message = one_sentence_error(cli("serve", "--sandbox", "--data-dir", str(tmp_path / "sandbox"),
                                         "--port", str(port), timeout=120))
    assert message == (f"port {port} on 127.0.0.1 is already in use (is another server running?): stop it, "
                       "or give another --port")


def test_a_command_without_a_sandbox_or_configuration(tmp_path: Path) -> None:
    message = one_sentence_error(cli("audit", "verify", "--data-dir", str(tmp_path / "none")))
    assert message.startswith(f"{tmp_path / 'none'} is not a sandbox data dir and no configuration was given")


def test_smsp_serve_with_a_malformed_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "smsp.toml"
    config.write_text("[national\nurl = 1\n")
    message = one_sentence_error(cli("smsp", "serve", "--config", str(config)))
    assert "not valid TOML" in message and "line 1" in message
