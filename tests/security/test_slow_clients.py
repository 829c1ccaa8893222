"""Slow clients (slowloris): a client that trickles its request head or body, or never sends one, is cut
off with a 408 within the timeouts, and meanwhile everyone else is served.

A server of its own, with short timeouts (``SAFEGUARDING_HEAD_TIMEOUT``, ``SAFEGUARDING_BODY_TIMEOUT``;
the defaults are 20 s and 60 s), so the suite does not wait a minute per case.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..api.test_fgm_dstu2 import message
from ..support import Server, flag_body, free_port
from .helpers import GP_ASID, assert_alive, cert_of, http_complete

HEAD_TIMEOUT, BODY_TIMEOUT = 1.5, 2.5


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("slow")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAFEGUARDING_HEAD_TIMEOUT", str(HEAD_TIMEOUT))
        patch.setenv("SAFEGUARDING_BODY_TIMEOUT", str(BODY_TIMEOUT))
        running = Server(directory / "data", free_port(), directory / "server.log").start()
    yield running
    running.stop()
    log = running.log_path.read_text()
    assert "Traceback" not in log and "UNHANDLED_ERROR" not in log


def _connect(server: Server, cert: tuple[str, str] | None = None) -> ssl.SSLSocket:
    tls = server.tls(cert).wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=30),
                                       server_hostname="127.0.0.1")
    tls.settimeout(30)
    return tls


def _trickle_until_answered(tls: ssl.SSLSocket, pieces: Iterator[bytes], every: float = 0.25) -> tuple[bytes, float]:
    """Send a piece every ``every`` seconds until the server answers; (answer, seconds it took)."""
    started = time.monotonic()
    answer = b""
    tls.settimeout(every)
    for piece in pieces:
        try:
            tls.sendall(piece)
            answer = tls.recv(65536)
        except (TimeoutError, ssl.SSLWantReadError):
            continue
        except OSError:
            break
        if answer:
            break
        if time.monotonic() - started > 30:
            break
    tls.settimeout(10)
    while answer and not http_complete(answer):
        more = tls.recv(65536)
        if not more:
            break
        answer += more
    return answer, time.monotonic() - started


def _forever(piece: bytes) -> Iterator[bytes]:
    while True:
        yield piece


def _until(stop: threading.Event, piece: bytes) -> Iterator[bytes]:
    while not stop.is_set():
        yield piece


def _closed_soon(tls: ssl.SSLSocket, within: float) -> bool:
    tls.settimeout(within)
    try:
        while tls.recv(65536):
            pass
    except (TimeoutError, ssl.SSLError, OSError) as exc:
        return not isinstance(exc, TimeoutError)
    return True


def _outcome(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"application/fhir+json" in head:
        return status, json.loads(body)["issue"][0]["details"]["coding"][0]["code"]
    return status, "(DSTU2) " + body.decode(errors="replace")


def test_a_connection_that_sends_nothing_is_closed(slow_server: Server) -> None:
    with _connect(slow_server) as tls:
        started = time.monotonic()
        tls.settimeout(HEAD_TIMEOUT + 10)
        answer = tls.recv(65536)
        while not http_complete(answer):
            answer += tls.recv(65536)
        assert HEAD_TIMEOUT - 0.5 < time.monotonic() - started < HEAD_TIMEOUT + 3
        assert _outcome(answer) == (408, "REQUEST_TIMEOUT")
        assert _closed_soon(tls, 5)


def test_a_trickled_head_is_cut_off(slow_server: Server) -> None:
    with _connect(slow_server) as tls:
        tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n")
        answer, took = _trickle_until_answered(tls, _forever(b"X-Slow: 1\r\n"))
        assert _outcome(answer) == (408, "REQUEST_TIMEOUT")
        assert took < HEAD_TIMEOUT + 3
        assert _closed_soon(tls, 5)


def test_a_trickled_r4_body_is_a_408_and_changes_nothing(slow_server: Server) -> None:
    child = slow_server.add_patient()
    body = json.dumps(flag_body(child)).encode()
    with _connect(slow_server) as tls:
        tls.sendall(b"POST /fgm/FHIR/R4/Flag HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                    b"X-Request-ID: slow-body-r4\r\nAuthorization: Bearer " + slow_server.token().encode()
                    + b"\r\nContent-Length: %d\r\n\r\n" % len(body))
        answer, took = _trickle_until_answered(tls, iter(bytes([b]) for b in body))
        assert _outcome(answer) == (408, "REQUEST_TIMEOUT")
        assert b"connection: close" in answer.lower()
        assert BODY_TIMEOUT - 0.5 < took < BODY_TIMEOUT + 3
        assert _closed_soon(tls, 5)
        assert slow_server.history(child) == []
        [record] = slow_server.audit_for("slow-body-r4")
        assert (record.event.status, record.event.outcome) == (408, "REQUEST_TIMEOUT")


def test_a_trickled_dstu2_message_is_refused_and_changes_nothing(slow_server: Server) -> None:
    child = slow_server.add_patient()
    body = message("create", child)
    gp = next(cert_of(s) for s in slow_server.facts["systems"] if s["asid"] == GP_ASID)
    with _connect(slow_server, gp) as tls:
        tls.sendall(b"POST /fhir/fgm/create HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body))
        answer, took = _trickle_until_answered(tls, iter(body[i:i + 20] for i in range(0, len(body), 20)))
        status, text = _outcome(answer)
        assert status == 400 and "MESSAGE_NOT_WELL_FORMED" in text and "The message was not received in time" in text
        assert took < BODY_TIMEOUT + 3
        assert _closed_soon(tls, 5)
        assert slow_server.history(child) == []


def test_a_trickled_web_form_is_refused_at_the_apis_body_time_limit(slow_server: Server) -> None:
    """The web pages read their forms with the APIs' body reader: a form trickled past the body time limit is
    answered "The form could not be read" (400) then, not whenever the client finishes."""
    body = b"csrf_token=x&user=555021935107&care_setting=unscheduled" + b"&pad=" + b"a" * 400
    with _connect(slow_server) as tls:
        tls.sendall(b"POST /web/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                    b"X-Request-ID: slow-web-form\r\nContent-Length: %d\r\n\r\n" % len(body))
        answer, took = _trickle_until_answered(tls, iter(body[i:i + 2] for i in range(0, len(body), 2)))
        head, _, page = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 ")
        assert b"The form could not be read." in page
        assert BODY_TIMEOUT - 0.5 < took < BODY_TIMEOUT + 3
    [record] = slow_server.audit_for("slow-web-form")
    assert (record.event.api, record.event.status, record.event.outcome) == ("web", 400, "BAD_FORM")


def test_a_client_answered_early_may_not_trickle_the_rest_for_ever(slow_server: Server) -> None:
    with _connect(slow_server) as tls:
        tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
        tls.settimeout(10)
        assert tls.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        _, took = _trickle_until_answered(tls, _forever(b"a"))
        assert time.monotonic() - started < HEAD_TIMEOUT + 3 and took < HEAD_TIMEOUT + 3


def test_everyone_else_is_served_while_many_clients_dawdle(slow_server: Server) -> None:
    stop = threading.Event()
    cut_off: list[float] = []

    def dawdle() -> None:
        try:
            tls = _connect(slow_server)
        except OSError:
            return
        with tls:
            tls.sendall(b"POST /fgm/FHIR/R4/Flag HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
            answer, took = _trickle_until_answered(tls, _until(stop, b"X: y\r\n"), every=0.2)
        if answer.startswith(b"HTTP/1.1 408"):
            cut_off.append(took)

    threads = [threading.Thread(target=dawdle) for _ in range(40)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        for _ in range(10):
            assert_alive(slow_server, within=1.0)
            time.sleep(0.1)
    finally:
        time.sleep(HEAD_TIMEOUT + 3)
        stop.set()
        for thread in threads:
            thread.join(30)
    assert len(cut_off) == len(threads)  # every one was cut off by the server, not by us
    assert max(cut_off) < HEAD_TIMEOUT + 4


def test_no_patient_data_in_this_servers_log(slow_server: Server, tmp_path: Path) -> None:
    log = slow_server.log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "REQUEST_REFUSED" and line.get("status") == 408 for line in lines)
    assert "eyJ" not in log and "Bearer" not in log
