"""The API's routes, found by one dictionary look-up before Starlette's router is asked.

Every API interaction is an ``Endpoint`` at a fixed path, or at a fixed path and one trailing ``{id}``.
Starlette finds them too (and still answers everything else: the web interface, 404, 405, HEAD), but
through three middleware layers, a send wrapper each and a regular expression per route, which cost
as much as some interactions' own work. ``ApiFirst`` is the outer ASGI app ``create_app`` composes in
front of Starlette: it looks the request up in ``FastRoutes`` and hands it straight to its endpoint (the
pipeline adds the hardening headers itself), so Starlette's middleware applies to everything else only.
That is why it wraps Starlette rather than extending it: middleware added to the inner app visibly
does not wrap the API endpoints.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from .pipeline import Endpoint

_ID = "/{id}"


class FastRoutes:
    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._exact: dict[tuple[str, str], Endpoint] = {}
        self._with_id: dict[tuple[str, str], Endpoint] = {}
        for route in routes:
            if not isinstance(route, Route) or not isinstance(route.endpoint, Endpoint):
                continue
            methods = [m for m in route.methods or () if m != "HEAD"]  # HEAD: Starlette's (GET without a body)
            if "{" not in route.path:
                self._exact.update(((m, route.path), route.endpoint) for m in methods)
            elif route.path.endswith(_ID) and "{" not in route.path[:-len(_ID)]:
                self._with_id.update(((m, route.path[:-len(_ID)]), route.endpoint) for m in methods)

    def match(self, scope: Scope) -> Endpoint | None:
        """The endpoint for this request, with ``path_params`` set; None leaves it to Starlette."""
        if scope["type"] != "http" or scope.get("root_path"):
            return None
        method, path = scope["method"], scope["path"]
        endpoint = self._exact.get((method, path))
        if endpoint is not None:
            scope["path_params"] = {}
            return endpoint
        prefix, _, last = path.rpartition("/")
        endpoint = self._with_id.get((method, prefix)) if last else None
        if endpoint is not None:
            scope["path_params"] = {"id": last}
        return endpoint


class ApiFirst:
    """The outer ASGI app: an API endpoint when ``FastRoutes`` finds one, else ``inner`` (Starlette, with its
    middleware). ``routes`` and ``state`` are the inner app's."""

    def __init__(self, inner: Starlette) -> None:
        self.inner = inner
        self.fast_routes = FastRoutes(inner.routes)

    @property
    def routes(self) -> list[BaseRoute]:
        return self.inner.routes

    @property
    def state(self) -> State:
        return self.inner.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.fast_routes.match(scope)
        if endpoint is None:
            await self.inner(scope, receive, send)
            return
        scope["app"] = self.inner
        await endpoint(scope, receive, send)
