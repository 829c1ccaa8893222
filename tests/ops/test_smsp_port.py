"""``safeguarding smsp serve`` on a port already in use: one sentence naming the port and what to change."""

from __future__ import annotations

import socket
from pathlib import Path

from ..deploy.helpers import cli, one_sentence_error


def test_smsp_serve_on_a_port_already_in_use(tmp_path: Path) -> None:
    (tmp_path / "audit.key").write_bytes(b"k" * 32)
    (tmp_path / "users.json").write_text('{"users": []}')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "smsp.toml"
        config.write_text(f'''
audit_key_file = "audit.key"
smsp_asid = "200000000999"
port = {port}
[tls]
cert = "smsp.pem"
key = "smsp.key"
client_ca = "local-ca.pem"
[national]
url = "https://national.invalid"
asid = "990101234567"
ca = "national-ca.pem"
cert = "national.pem"
key = "national.key"
''')
        message = one_sentence_error(cli("smsp", "serve", "--config", str(config), timeout=120))
    assert message == (f"port {port} on 127.0.0.1 is already in use (is another server running?): stop it, "
                       f"or set another port in {config}")
