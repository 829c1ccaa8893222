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
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import greenlet

T = TypeVar("T")

# Idle greenlets kept per thread for the next ``run``. A new greenlet costs its creation and, in
# CPython 3.11, a fresh frame stack (an mmap and munmap a request); a kept one has both already.
MAX_IDLE = 256


class _Returned:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Raised:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Inline(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet for ``run``, kept and used again: it runs one function at a time and hands its outcome
    to its parent, the event loop's greenlet, between functions."""

    loop: asyncio.AbstractEventLoop

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:  # greenlet's entry point
        while True:
            try:
                outcome: _Returned | _Raised = _Returned(fn(*args))
            except greenlet.GreenletExit:
                raise  # the greenlet itself is being discarded (its thread ended): let it end
            except BaseException as exc:  # noqa: BLE001 - handed to the caller of ``run``, to raise there
                outcome = _Raised(exc)
            fn = args = None  # type: ignore[assignment]  # hold nothing of a finished request while idle
            fn, args = self.parent.switch(outcome)


_threads = threading.local()


async def run(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on this thread, awaiting on its behalf whatever it passes to ``wait``."""
    try:
        idle: list[_Inline] = _threads.idle
    except AttributeError:
        idle = _threads.idle = []
    child = idle.pop() if idle else _Inline()
    here = greenlet.getcurrent()
    if child.parent is not here:
        child.parent = here
    child.loop = asyncio.get_running_loop()
    step = child.switch(fn, args)
    while not isinstance(step, (_Returned, _Raised)):  # an awaitable passed to ``wait``
        try:
            value = await step
        except BaseException as exc:  # noqa: BLE001 - handed to the code that waited, to handle or not
            step = child.throw(exc)
        else:
            step = child.switch(value)
    if len(idle) < MAX_IDLE:
        del child.loop  # an idle greenlet keeps no loop alive
        idle.append(child)
    if isinstance(step, _Raised):
        raise step.error
    return cast(T, step.value)


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
