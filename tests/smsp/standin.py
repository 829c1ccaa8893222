"""A misbehaving national FGM-IS service for the SMSP's tests, run as its own process over mutual TLS.

``python standin.py MODE PORT CERT KEY CA``: it listens on 127.0.0.1:PORT, requires a client certificate
from CA, reads each request in full, writes one line per request to stdout, and answers as MODE says:

- ``junk``: 200 with an HTML page;
- ``status-500``: 500 with a short text body;
- ``drip``: headers announcing 1 MB, then one byte every 2 s;
- ``huge-declared``: headers announcing 2 GB, then the body as fast as the client reads it;
- ``huge-chunked``: a chunked body of 2 GB in 64 KiB chunks, without announcing its length.

A hung national service is this process stopped with SIGSTOP: the kernel still accepts connections, nobody
answers them.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import sys
import time

TWO_GB = 2 * 1024 * 1024 * 1024
CHUNK = b"<" * 65536


def _read_request(stream: socket.socket) -> bool:
    head = b""
    while b"\r\n\r\n" not in head:
        data = stream.recv(65536)
        if not data:
            return False
        head += data
    head, _, body = head.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        data = stream.recv(65536)
        if not data:
            return False
        body += data
    return True


def _answer(mode: str, stream: socket.socket) -> None:
    if mode == "junk":
        body = b"<html><body>Service temporarily moved</body></html>"
        stream.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: close\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    elif mode == "status-500":
        body = b"internal error"
        stream.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    elif mode == "drip":
        stream.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml+fhir\r\nContent-Length: 1000000\r\n\r\n")
        while True:
            time.sleep(2)
            stream.sendall(b"<")
    elif mode == "huge-declared":
        stream.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml+fhir\r\nContent-Length: %d\r\n\r\n"
                       % TWO_GB)
        for _ in range(TWO_GB // len(CHUNK)):
            stream.sendall(CHUNK)
    elif mode == "huge-chunked":
        stream.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml+fhir\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(TWO_GB // len(CHUNK)):
            stream.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
        stream.sendall(b"0\r\n\r\n")


def main(mode: str, port: int, cert: str, key: str, ca: str) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                with context.wrap_socket(self.request, server_side=True) as stream:
                    if _read_request(stream):
                        print("request", flush=True)
                        _answer(mode, stream)
            except (OSError, ssl.SSLError):
                pass  # the SMSP gave up on us: that is the point

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 1024

    with Server(("127.0.0.1", port), Handler) as server:
        print("listening", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:6])
