"""The connection to the national FGM-IS service: mutual TLS with the SMSP's certificate, asynchronous.

Every query has ONE deadline for the whole exchange (waiting for a pooled connection, connecting with the
TLS handshake, sending, the reply's headers and its whole body): whatever the national service does (never
answers, sends its headers then a byte every few seconds), the query ends at the deadline. The reply's
body is capped (``MAX_REPLY``; an FGM-IS query response is a few KB) and refused as soon as it goes
beyond, without reading further (``transport.py`` keeps the connection from reading ahead). Calls share
one bounded pool of connections and run on the event loop: no thread per call, so concurrency is not
capped by a thread count.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import httpx

from ..api.dstu2.codes import EVENT_QUERY_REQUEST
from ..security.tls_policy import apply_tls_policy
from .transport import FlowControlledTransport

MAX_REPLY = 1024 * 1024  # 1 MiB
MAX_CONNECTIONS = 100


class NationalUnreachable(Exception):
    """No answer in time: refused, reset, TLS failure, the deadline. ``reason`` is a coded word for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NationalReplyRefused(Exception):
    """An answer the SMSP will not read: larger than ``MAX_REPLY``, or content-encoded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class NationalReply:
    status: int
    media_type: str
    body: bytes


def _tls_reason(exc: BaseException) -> str:
    """``tls-verification-failed`` when the national certificate was not trusted, else the error's type."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return "tls-verification-failed"
        if isinstance(seen, ssl.SSLError):
            return "tls-handshake-failed"
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


class NationalClient:
    def __init__(self, base_url: str, ca: str, cert: str, key: str, timeout: float, *,
                 max_connections: int = MAX_CONNECTIONS, max_reply: int = MAX_REPLY) -> None:
        context = apply_tls_policy(ssl.create_default_context(cafile=ca))  # the service's TLS policy
        context.load_cert_chain(cert, key)
        self.timeout, self.max_reply = timeout, max_reply
        # httpx's own per-phase timeouts stay as a backstop; the deadline in ``query`` is what bounds a call.
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(timeout),
                                         transport=FlowControlledTransport(context, limits))

    async def query(self, message: bytes, national_message_id: str, deadline: float | None = None) -> NationalReply:
        """Post the query and read the reply, all within ``deadline`` seconds (default: the timeout)."""
        try:
            async with asyncio.timeout(self.timeout if deadline is None else max(deadline, 0.0)):
                reply = await self._exchange(message, national_message_id)
        except TimeoutError:
            raise NationalUnreachable("deadline") from None
        except httpx.HTTPError as exc:
            raise NationalUnreachable(_tls_reason(exc)) from None
        if isinstance(reply, str):
            # Raised here, once the exchange's frames (and the connection with what it read ahead) are gone.
            raise NationalReplyRefused(reply)
        return reply

    async def _exchange(self, message: bytes, national_message_id: str) -> NationalReply | str:
        """The reply, or why it is refused."""
        headers = {"Content-Type": "application/xml+fhir; charset=utf-8", "Accept-Encoding": "identity",
                   "SOAPAction": f'"{EVENT_QUERY_REQUEST}"', "X-Request-ID": national_message_id}
        async with self._client.stream("POST", "/fhir/fgm/query", content=message, headers=headers) as response:
            if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
                return "content-encoded"
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_reply:
                return "too-large"
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > self.max_reply:
                    return "too-large"  # leaving the block closes the connection, unread
                chunks.append(chunk)
            media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            return NationalReply(response.status_code, media_type, b"".join(chunks))

    async def close(self) -> None:
        await self._client.aclose()
