"""The SMSP against a misbehaving national service: a stand-in national process (``standin.py``) over mutual
TLS, hung (SIGSTOP), dripping, sending 2 GB; the SMSP a real process too."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .harness import GIRL, Smsp, Standin, _outcome, _parse, make_smsp, query_message


def _threads(pid: int | str) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one), summed over a process's threads."""
    stats = [_schedstat(str(task / "schedstat")) for task in Path(f"/proc/{pid}/task").iterdir()
             if (task / "schedstat").exists()]
    return sum(cpu for cpu, _ in stats), sum(wait for _, wait in stats)


def _schedstat(path: str) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of a thread, from /proc/.../schedstat."""
    on_cpu, waiting, _ = Path(path).read_text().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


async def _concurrent_queries(smsp: Smsp, count: int, measure: Callable[[], None]) -> list[tuple[int, float, bytes]]:
    """``count`` queries at once over ``count`` connections opened (and TLS-handshaken) beforehand;
    ``measure`` is called once they are open, and again once all are answered. Plain HTTP/1.1 on asyncio
    streams: a full client's bookkeeping for 100 connections would cost this test more CPU than the SMSP
    spends, and blur what is measured."""
    message = query_message(GIRL)
    request = (f"POST /fhir/fgm/query HTTP/1.1\r\nHost: 127.0.0.1:{smsp.port}\r\nContent-Type: text/xml\r\n"
               f"Content-Length: {len(message)}\r\n\r\n").encode() + message
    streams = [await asyncio.open_connection("127.0.0.1", smsp.port, ssl=smsp.tls(smsp.client_cert))
               for _ in range(count)]
    measure()

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[int, float, bytes]:
        started = time.monotonic()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)\r\ncontent-length: *([0-9]+)", head)[1])  # type: ignore[index]
        body = await reader.readexactly(length)
        elapsed = time.monotonic() - started
        writer.close()
        return int(head.split(b" ", 2)[1]), elapsed, body

    answers = await asyncio.gather(*(one(reader, writer) for reader, writer in streams))
    measure()
    return answers


def test_a_hundred_concurrent_queries_during_a_national_hang_all_end_at_the_deadline(
        standin_pki: dict[str, Path], standin: Callable[[str], Standin], smsps: list[Smsp]) -> None:
    """The national service is stopped (SIGSTOP: connections are accepted by the kernel, nobody answers)
    and 100 queries arrive at once: every one is answered 500 COULD_NOT_CONNECT_TO_SPINE at its deadline.

    The bound is the deadline + 1 s on a quiet host, and is computed, not guessed, on a busy one. The
    SMSP answers from one event loop, so its own work for the 100 queries (reading each message, writing
    the national one, the answer, the audit) runs one after another, as does this test's for reading the
    answers: the 1 s pays for that. It fits when the SMSP costs under 10 ms of CPU a query; its event
    loop's CPU time (from /proc/<pid>/schedstat) measured ~2 ms a query on this shared 2-core host, the
    100 answers coming 3.06 to 3.26 s after they were sent with a 3 s deadline. It is asserted under
    15 ms, as cache misses on a busy host inflate it. On a busy host two things are added to the bound, both read from
    schedstat for every thread of the SMSP and of this test: the time they were runnable but waiting for
    a CPU (no work of theirs), and their CPU time beyond the 1 s. On a quiet host both additions are ~0
    and the bound is the deadline + 1 s."""
    hung = standin("junk")
    timeout = 3.0
    smsp = make_smsp(standin_pki, hung.upstream, "hang",
                     national={"timeout_seconds": timeout, "breaker_threshold": 1000},
                     limits={"per_client_per_second": 1000, "per_client_burst": 1000})
    smsps.append(smsp)
    assert smsp.process is not None
    hung.process.send_signal(signal.SIGSTOP)
    smsp_stat = f"/proc/{smsp.process.pid}/schedstat"
    stats: list[tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = []
    answers = asyncio.run(_concurrent_queries(smsp, 100, lambda: stats.append(
        (_schedstat(smsp_stat), _threads(smsp.process.pid), _threads("self")))))  # type: ignore[union-attr]
    (main_before, smsp_before, own_before), (main_after, smsp_after, own_after) = stats

    assert [status for status, _, _ in answers] == [500] * 100
    for _, _, body in answers:
        assert b"COULD_NOT_CONNECT_TO_SPINE" in body
    cpu_per_query = (main_after[0] - main_before[0]) / 100  # the event loop's thread
    work = (smsp_after[0] - smsp_before[0]) + (own_after[0] - own_before[0])  # every thread, both sides
    host_contention = (smsp_after[1] - smsp_before[1]) + (own_after[1] - own_before[1])
    slowest = max(elapsed for _, elapsed, _ in answers)
    fastest = min(elapsed for _, elapsed, _ in answers)
    report = f"cpu/query {cpu_per_query * 1000:.1f} ms, all work {work:.2f} s, contention {host_contention:.2f} s, " \
             f"answers in {fastest:.2f}..{slowest:.2f} s"
    print(report)
    assert fastest >= timeout - 0.1, report  # they did wait for the national service
    assert cpu_per_query < 0.015, report
    assert slowest <= timeout + max(1.0, work) + host_contention, report
    assert hung.requests() == 0


def test_a_dripping_national_service_is_cut_at_the_deadline(standin_pki: dict[str, Path],
                                                            standin: Callable[[str], Standin],
                                                            smsps: list[Smsp]) -> None:
    """Headers at once, then a byte every 2 s: per-phase timeouts would never fire; the deadline does."""
    drip = standin("drip")
    smsp = make_smsp(standin_pki, drip.upstream, "drip", national={"timeout_seconds": 3})
    smsps.append(smsp)
    started = time.monotonic()
    response = smsp.query(GIRL)
    elapsed = time.monotonic() - started
    assert response.status_code == 500, response.text
    assert _outcome(_parse(response)) == ("COULD_NOT_CONNECT_TO_SPINE", "no-store")
    assert 2.9 <= elapsed < 4.0
    assert drip.requests() == 1
    assert [event["error"] for event in smsp.events("SMSP_NATIONAL_UNREACHABLE")] == ["deadline"]


@pytest.mark.parametrize("mode", ["huge-chunked", "huge-declared"])
def test_a_2_gb_national_answer_is_refused_without_growing_the_smsp(
        mode: str, standin_pki: dict[str, Path], standin: Callable[[str], Standin], smsps: list[Smsp]) -> None:
    """Ten 2 GB answers (announced, or chunked without a length) are each refused once 1 MiB has come.

    Before the cap one such answer grew the SMSP by 2 GB. Now what it holds of a reply is the 1 MiB it
    read plus 128 KiB read ahead; the allocator keeps some of it for reuse, so VmRSS settles a few MB
    above where it started (measured here: +1 MB a reply for the first five, then flat), and is
    asserted to: less than 10 MiB over the ten, less than 4 MiB over the last five."""
    huge = standin(mode)
    smsp = make_smsp(standin_pki, huge.upstream, mode, national={"timeout_seconds": 10, "breaker_threshold": 1000})
    smsps.append(smsp)
    assert smsp.query("9990000017").status_code == 400  # warm: an invalid query, answered locally
    before = smsp.rss_kib()
    sizes = []
    for _ in range(10):
        started = time.monotonic()
        response = smsp.query(GIRL)
        assert time.monotonic() - started < 10
        assert response.status_code == 400, response.text
        assert _outcome(_parse(response)) == ("RESPONSE_MESSAGE_VALIDATION_ERROR", "structure")
        assert b"larger than the SMSP accepts" in response.content
        sizes.append(smsp.rss_kib())
    report = f"VmRSS {before} KiB, then {sizes}"
    assert max(sizes) - before < 10 * 1024, report
    assert sizes[-1] - sizes[4] < 4 * 1024, report
    assert huge.requests() == 10
    assert [event["error"] for event in smsp.events("SMSP_NATIONAL_REPLY_REFUSED")] == ["too-large"] * 10
    assert GIRL not in smsp.log()


def test_national_http_500s_open_the_breaker(standin_pki: dict[str, Path], standin: Callable[[str], Standin],
                                             smsps: list[Smsp]) -> None:
    """A national 500 is a failing national service (as 502 and 503 are): it counts towards opening the
    circuit, and the client is told COULD_NOT_CONNECT_TO_SPINE (try later), not that the data was bad."""
    failing = standin("status-500")
    smsp = make_smsp(standin_pki, failing.upstream, "failing", national={"breaker_threshold": 2})
    smsps.append(smsp)
    for _ in range(3):
        response = smsp.query(GIRL)
        assert response.status_code == 500, response.text
        assert _outcome(_parse(response)) == ("COULD_NOT_CONNECT_TO_SPINE", "no-store")
    assert failing.requests() == 2  # the third was refused by the open circuit, without calling
    assert [event["status"] for event in smsp.events("SMSP_NATIONAL_FAILED")] == [500, 500]
    assert b"circuit open" in response.content
