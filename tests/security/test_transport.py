"""The transport: HTTP/1.1 only (Spine's messaging speaks nothing else), over real TLS on raw sockets."""

from __future__ import annotations

import socket

import orjson
import pytest

from ..support import Server


def _exchange(server: Server, request: bytes) -> bytes:
    """Send ``request`` over TLS and read until the server closes the connection."""
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    with server.tls().wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(request)
        received = b""
        while chunk := tls.recv(65536):
            received += chunk
    return received


def _refused(answer: bytes) -> dict:  # type: ignore[type-arg]
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 400 Bad Request", lines[0]
    assert b"connection: close" in [line.lower() for line in lines]
    return orjson.loads(body)  # type: ignore[no-any-return]


@pytest.mark.parametrize("request_line", [b"GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n",
                                          b"GET /_ping HTTP/1.0\r\n\r\n",
                                          b"GET /_ping\r\n\r\n",
                                          b"GET /_ping\r\n"])
def test_anything_but_http_1_1_gets_a_400_outcome(sqlite_server: Server, request_line: bytes) -> None:
    outcome = _refused(_exchange(sqlite_server, request_line))
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["code"] == "structure"
    assert issue["details"]["coding"][0]["code"] == "MESSAGE_NOT_WELL_FORMED"


def test_http_1_1_is_served(sqlite_server: Server) -> None:
    answer = _exchange(sqlite_server, b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
