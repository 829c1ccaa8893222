"""The connection to the national FGM-IS service: mutual TLS with the SMSP's certificate, a timeout."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import httpx

from ..api.dstu2.codes import EVENT_QUERY_REQUEST


class NationalUnreachable(Exception):
    """No answer in time (refused, reset, TLS failure, timeout)."""


@dataclass(frozen=True)
class NationalReply:
    status: int
    media_type: str
    body: bytes


class NationalClient:
    def __init__(self, base_url: str, ca: str, cert: str, key: str, timeout: float) -> None:
        context = ssl.create_default_context(cafile=ca)
        context.load_cert_chain(cert, key)
        # Connect (with the TLS handshake), write and read each bounded: a service that accepts the
        # connection and never answers costs at most the timeout.
        self._client = httpx.Client(base_url=base_url, verify=context, timeout=httpx.Timeout(timeout),
                                    limits=httpx.Limits(max_connections=50))

    def query(self, message: bytes, national_message_id: str) -> NationalReply:
        try:
            response = self._client.post(
                "/fhir/fgm/query", content=message,
                headers={"Content-Type": "application/xml+fhir; charset=utf-8",
                         "SOAPAction": f'"{EVENT_QUERY_REQUEST}"', "X-Request-ID": national_message_id},
            )
        except httpx.HTTPError as exc:
            raise NationalUnreachable(type(exc).__name__) from exc
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        return NationalReply(response.status_code, media_type, response.content)

    def close(self) -> None:
        self._client.close()
