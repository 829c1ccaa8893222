"""The TLS policy (Mozilla "intermediate"), checked with real handshakes by ``openssl s_client`` against a running
server: what the policy refuses must fail, what it allows must succeed."""

from __future__ import annotations

import re
import subprocess

import pytest

from ..support import Server


def _handshake(server: Server, *options: str) -> tuple[bool, str]:
    command = ["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername", "localhost",
               "-CAfile", str(server.ca), *options]
    done = subprocess.run(command, input=b"", capture_output=True, timeout=30)  # noqa: S603 - fixed arguments
    text = (done.stdout + done.stderr).decode(errors="replace")
    # s_client's exit status also reflects how the idle connection ended: the session summary says what was agreed.
    return re.search(r"New, TLSv1\.[23], Cipher is [A-Z]", text) is not None, text


@pytest.mark.parametrize("options", [
    ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"),       # CBC
    ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384"),    # CBC
    ("-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA256"),      # CBC
    ("-tls1_2", "-cipher", "AES128-GCM-SHA256"),            # RSA key exchange
    ("-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"),    # finite-field DHE
    ("-tls1_3", "-groups", "X448"),
    ("-tls1_3", "-groups", "secp521r1"),
    ("-tls1_3", "-groups", "ffdhe2048"),
    ("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"),
    ("-tls1", "-cipher", "DEFAULT@SECLEVEL=0"),
], ids=lambda o: " ".join(o))
def test_what_the_policy_refuses_fails_the_handshake(sqlite_server: Server, options: tuple[str, ...]) -> None:
    ok, text = _handshake(sqlite_server, *options)
    assert not ok, text


_OPENSSL_NAMES = {"X25519": "X25519", "P-256": "ECDH, prime256v1", "P-384": "ECDH, secp384r1"}


def _temp_key(group: str) -> str:
    return f"Server Temp Key: {_OPENSSL_NAMES[group]}"


# In TLS 1.2 the client must also offer P-256, the curve of the server's certificate (ECDSA), to use that certificate.
@pytest.mark.parametrize("options", [
    ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", "-groups", "X25519:P-256"),
    ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384", "-groups", "P-256"),
    ("-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305", "-groups", "P-384:P-256"),
    ("-tls1_3", "-groups", "X25519"),
    ("-tls1_3", "-groups", "P-256"),
    ("-tls1_3", "-groups", "P-384"),
], ids=lambda o: " ".join(o))
def test_what_the_policy_allows_succeeds(sqlite_server: Server, options: tuple[str, ...]) -> None:
    ok, text = _handshake(sqlite_server, *options)
    assert ok, text
    assert any(_temp_key(group) in text for group in options[-1].split(":")), text


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
@pytest.mark.parametrize("group", ["X448", "P-521"])
def test_groups_outside_the_policy_are_never_chosen(sqlite_server: Server, version: str, group: str) -> None:
    """Offered first, with P-256 as the client's second choice: the server takes P-256."""
    ok, text = _handshake(sqlite_server, version, "-groups", f"{group}:P-256")
    assert ok, text
    assert _temp_key("P-256") in text, text
