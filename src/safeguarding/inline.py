"""Synchronous request code on the event loop's own thread, with no thread per request.

A request's handler (authentication, the rules, store calls) is plain synchronous code. ``run(fn, ...)``
runs it in a greenlet on the event loop's thread; where it has to wait (its transaction being committed by
the store's writer, a call to another service) it calls ``wait(awaitable)``, which hands the loop back
until that is done and then carries on where it was. A request costs no thread hop and no pool of
threads contending for the GIL; other requests are served while one waits.

Outside ``run`` (the CLI, tests, a worker thread) there is no loop to hand back: ``blocking`` calls its
function directly and the store's writer is waited for with a thread future, so the same code works
everywhere. Code run inline must not block for long without ``blocking``: reading the local database
is fine (microseconds from the page cache); a network call is not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import greenlet

T = TypeVar("T")


class _Inline(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet started by ``run``; its parent is the event loop's greenlet."""

    loop: asyncio.AbstractEventLoop


async def run(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on this thread, awaiting on its behalf whatever it passes to ``wait``."""
    child = _Inline(fn)
    child.loop = asyncio.get_running_loop()
    step = child.switch(*args)
    while not child.dead:
        try:
            value = await step
        except BaseException as exc:  # noqa: BLE001 - handed to the code that waited, to handle or not
            step = child.throw(exc)
        else:
            step = child.switch(value)
    return cast(T, step)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop the current code runs inline on, or None outside ``run``."""
    current = greenlet.getcurrent()
    return current.loop if isinstance(current, _Inline) else None


def wait(awaitable: Awaitable[T]) -> T:
    """Inside ``run``: the result of ``awaitable``, the loop serving others meanwhile."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Inline):
        raise RuntimeError("inline.wait outside inline.run")
    return cast(T, current.parent.switch(awaitable))


def blocking(fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn(*args)``, which may block (network, a slow disk): in a worker thread when inline, so the
    loop goes on serving; directly otherwise."""
    loop = running_loop()
    if loop is None:
        return fn(*args)
    return wait(loop.run_in_executor(None, fn, *args))
