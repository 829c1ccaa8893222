"""Health endpoints, as NHS APIs have them: /_ping (alive) and /_status (ready: store reachable)."""

from __future__ import annotations

import orjson
from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response

from .. import __version__, metrics
from ..store.interface import Store, StoreUnavailable


def _json(status: int, body: dict[str, object]) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def metrics_endpoint(_: Request) -> Response:
    body = await to_thread.run_sync(metrics.exposition)
    return Response(body, media_type=metrics.CONTENT_TYPE)


async def ping(_: Request) -> Response:
    return _json(200, {"status": "pass", "version": __version__})


def status_endpoint(store: Store):  # type: ignore[no-untyped-def]
    async def status(_: Request) -> Response:
        try:
            await to_thread.run_sync(store.ping)
        except StoreUnavailable:
            return _json(503, {"status": "fail", "checks": {"store": "fail"}, "version": __version__})
        return _json(200, {"status": "pass", "checks": {"store": "pass"}, "version": __version__})

    return status
