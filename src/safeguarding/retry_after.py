"""Every 503 answer says when to try again (RFC 9110 10.2.3): ``Retry-After``, unless the answer set it."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RETRY_AFTER_SECONDS = 5


class RetryAfter:
    def __init__(self, app: ASGIApp, seconds: int = RETRY_AFTER_SECONDS) -> None:
        self.app = app
        self.value = str(seconds).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers: list[Any] = list(message.get("headers", ()))
                if not any(bytes(k).lower() == b"retry-after" for k, _ in headers):
                    message = {**message, "headers": [*headers, (b"retry-after", self.value)]}
            await send(message)

        await self.app(scope, receive, sending)
