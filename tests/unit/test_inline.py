"""``inline``: synchronous request code on the event loop thread, handing the loop back while it waits."""

from __future__ import annotations

import asyncio
import threading
import time

import greenlet
import pytest

from safeguarding import inline


def test_run_returns_the_result_and_waits_without_blocking_the_loop() -> None:
    order: list[str] = []

    def handler(name: str, delay: float) -> str:
        assert inline.running_loop() is asyncio.get_running_loop()
        order.append(f"{name} start")
        inline.wait(asyncio.sleep(delay))
        order.append(f"{name} end")
        return name.upper()

    async def main() -> list[str]:
        return await asyncio.gather(inline.run(handler, "slow", 0.05), inline.run(handler, "fast", 0.0))

    assert asyncio.run(main()) == ["SLOW", "FAST"]
    # Both started before either finished: the slow one's wait let the loop run the other.
    assert order == ["slow start", "fast start", "fast end", "slow end"]


def test_errors_reach_the_caller_and_the_code_that_waited() -> None:
    def fails() -> None:
        raise ValueError("from the handler")

    async def failing_await() -> None:
        raise KeyError("from the awaitable")

    def catches() -> str:
        try:
            inline.wait(failing_await())
        except KeyError:
            return "caught where it waited"
        return "not raised"

    async def main() -> str:
        with pytest.raises(ValueError, match="from the handler"):
            await inline.run(fails)
        return await inline.run(catches)

    assert asyncio.run(main()) == "caught where it waited"


def test_outside_run_there_is_no_loop_and_wait_refuses() -> None:
    assert inline.running_loop() is None
    pending = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="outside inline.run"):
        inline.wait(pending)
    pending.close()


def test_blocking_runs_in_a_worker_thread_inline_and_directly_otherwise() -> None:
    def where() -> int:
        time.sleep(0.01)
        return threading.get_ident()

    here = threading.get_ident()
    assert inline.blocking(where) == here  # no loop to hand back: called directly

    async def main() -> tuple[int, int]:
        return here, await inline.run(inline.blocking, where)

    loop_thread, worker = asyncio.run(main())
    assert worker != loop_thread


def test_cancelling_the_request_reaches_the_code_that_waited() -> None:
    seen: list[str] = []

    def handler() -> None:
        try:
            inline.wait(asyncio.sleep(10))
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        task = asyncio.ensure_future(inline.run(handler))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert seen == ["cancelled"]


def test_a_finished_greenlet_is_used_again_even_after_an_error() -> None:
    def me() -> greenlet.greenlet:
        return greenlet.getcurrent()

    def fails() -> None:
        raise ValueError("once")

    async def main() -> tuple[greenlet.greenlet, greenlet.greenlet, greenlet.greenlet, list[greenlet.greenlet]]:
        first = await inline.run(me)
        with pytest.raises(ValueError, match="once"):
            await inline.run(fails)
        again = await inline.run(me)

        def waits() -> greenlet.greenlet:
            inline.wait(asyncio.sleep(0.01))
            return greenlet.getcurrent()

        together = await asyncio.gather(*(inline.run(waits) for _ in range(3)))
        return first, again, greenlet.getcurrent(), list(together)

    first, again, loop_greenlet, together = asyncio.run(main())
    assert first is again  # the same greenlet served the next request, after one that raised
    assert first is not loop_greenlet
    assert len({id(g) for g in together}) == 3  # requests in flight at once each have their own
    assert inline.running_loop() is None  # and outside run there is still no loop
