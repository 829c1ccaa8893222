"""Error simulation for suppliers, in sandbox mode only: the answers a client must handle, on demand.

Most scenarios are plain sandbox patients whose demographics make the real rules refuse (``data.py``:
unverified, restricted, male, 18 tomorrow, a plan ending today). The failures a data set cannot cause
are injected at two seams, each installed by the composition root only when ``settings.sandbox``:

``ScenarioDemographics``
    wraps the demographics source. For ``DEMOGRAPHICS_UNAVAILABLE`` it fails as an unreachable PDS
    would (``DemographicsUnavailable``, a ``StoreUnavailable``: every API answers it as its own "service
    unavailable" row); for ``STORE_UNAVAILABLE`` it fails as the store itself does when its database is
    down (``StoreUnavailable`` from the request's first store read); for ``SLOW_ANSWER`` it answers the
    patient's real demographics after the configured delay (a slow PDS).

``ScenarioMiddleware``
    the ASGI app around the whole service. ``X-Sandbox-Scenario: slow-answer`` holds any request for the
    configured delay before the service sees it (noting when the client gave up waiting), and every 503
    answer carries ``Retry-After`` (``RETRY_AFTER_SECONDS``) so a client's back-off can be checked.

The delay is ``SAFEGUARDING_SANDBOX_SLOW_SECONDS`` (default 10, past a typical 5-second client timeout).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import inline
from ..api.pipeline import MAX_BODY
from ..api.steps import BODY_TIMEOUT
from ..api.wire import SCOPE_ABANDONED, SCOPE_SCENARIO
from ..domain.fgm import Indicator
from ..domain.patients import Demographics, Patient
from ..store.interface import StoreUnavailable, Transaction

DEMOGRAPHICS_UNAVAILABLE = "9990000212"
STORE_UNAVAILABLE = "9990000220"
SLOW_ANSWER = "9990000239"

SCENARIO_HEADER = "x-sandbox-scenario"
SLOW_SCENARIO = "slow-answer"
SLOW_ENV = "SAFEGUARDING_SANDBOX_SLOW_SECONDS"
DEFAULT_SLOW_SECONDS = 10.0
RETRY_AFTER_SECONDS = 2


def slow_seconds() -> float:
    raw = os.environ.get(SLOW_ENV)
    if raw is None:
        return DEFAULT_SLOW_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{SLOW_ENV} must be a number of seconds") from None
    if not 0 <= value <= 300:
        raise ValueError(f"{SLOW_ENV} must be from 0 to 300 seconds")
    return value


class DemographicsUnavailable(StoreUnavailable):
    """The demographics source (PDS) could not be reached: answered as the service being unavailable."""


class ScenarioDemographics:
    """A demographics source with the sandbox's failure scenarios in front of the real one."""

    def __init__(self, inner: Demographics, delay: float) -> None:
        self._inner = inner
        self._delay = delay

    def lookup(self, nhs_number: str) -> Patient | None:
        self._scenario(nhs_number)
        return self._inner.lookup(nhs_number)

    @property
    def joins_indicator(self) -> bool:
        """Whether ``joined_lookup`` can be used: the source is this store's own table."""
        return bool(getattr(self._inner, "joins_indicator", False))

    def joined_lookup(self, nhs_number: str) -> Callable[[Transaction], tuple[Patient | None, Indicator | None]]:
        self._scenario(nhs_number)  # here, before the search's unit of work: never inside a shared batch
        return self._inner.joined_lookup(nhs_number)  # type: ignore[attr-defined, no-any-return]

    def _scenario(self, nhs_number: str) -> None:
        if nhs_number == DEMOGRAPHICS_UNAVAILABLE:
            raise DemographicsUnavailable("sandbox scenario: demographics unavailable")
        if nhs_number == STORE_UNAVAILABLE:
            raise StoreUnavailable("sandbox scenario: store unavailable")
        if nhs_number == SLOW_ANSWER:
            _pause(self._delay)


def _pause(seconds: float) -> None:
    """Wait without holding the event loop (inline: the loop serves others meanwhile)."""
    if inline.running_loop() is not None:
        inline.wait(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


class ScenarioMiddleware:
    """The sandbox's header-driven scenarios and the 503 ``Retry-After``, around the whole app."""

    def __init__(self, app: ASGIApp, delay: float) -> None:
        self.app = app
        self.delay = delay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _header(scope, SCENARIO_HEADER) == SLOW_SCENARIO.encode():
            scope[SCOPE_SCENARIO] = SLOW_SCENARIO
            receive = await self._hold(scope, receive)
        await self.app(scope, receive, _with_retry_after(send))

    async def _hold(self, scope: Scope, receive: Receive) -> Receive:
        """Read the whole request, then wait the delay, watching for the client giving up; the service
        then answers the request as usual (and audits it, noting whether anyone was still waiting)."""
        messages: list[Message] = []
        size, complete = 0, False
        with anyio.move_on_after(BODY_TIMEOUT):  # a trickled or oversized body: the service refuses it as usual
            while size <= MAX_BODY:
                message = await receive()
                messages.append(message)
                size += len(message.get("body", b""))
                if message["type"] != "http.request" or not message.get("more_body", False):
                    complete = True
                    break
        if not complete:
            return _replaying(messages, receive)
        if messages[-1]["type"] == "http.disconnect":
            scope[SCOPE_ABANDONED] = True
        else:
            try:
                disconnect = await asyncio.wait_for(receive(), timeout=self.delay)
            except TimeoutError:
                pass
            else:
                if disconnect["type"] == "http.disconnect":
                    scope[SCOPE_ABANDONED] = True
        return _replaying(messages, _disconnected)


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


def _replaying(messages: list[Message], then: Receive) -> Receive:
    """A receive that hands back ``messages``, then carries on with ``then``."""
    replay = iter(messages)

    async def replayed() -> Message:
        for message in replay:
            return message
        return await then()

    return replayed


def _header(scope: Scope, name: str) -> bytes | None:
    wanted = name.encode()
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return bytes(value).strip().lower()
    return None


def _with_retry_after(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 503:
            headers: list[Any] = list(message.get("headers", ()))
            if not any(bytes(k).lower() == b"retry-after" for k, _ in headers):
                headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
                message = {**message, "headers": headers}
        await send(message)

    return sending


def with_scenarios(app: ASGIApp, sandbox: bool) -> ASGIApp:
    """``app`` with the sandbox's scenarios around it; outside the sandbox, ``app`` itself."""
    return ScenarioMiddleware(app, slow_seconds()) if sandbox else app


def scenario_demographics(demographics: Demographics, sandbox: bool) -> Demographics:
    """The demographics source with the failure scenarios in front; outside the sandbox, unchanged."""
    return ScenarioDemographics(demographics, slow_seconds()) if sandbox else demographics
