"""``FastRoutes``: the API's endpoints found by look-up, everything else left to Starlette's router."""

from __future__ import annotations

from typing import Any

from starlette.responses import PlainTextResponse
from starlette.routing import Route

from safeguarding.api.pipeline import Dialect, Endpoint
from safeguarding.api.routing import FastRoutes


def endpoint(name: str) -> Endpoint:
    return Endpoint(Dialect("test", ""), name, lambda request, ctx: None,  # type: ignore[arg-type, return-value]
                    auditor=None, authenticate=None)  # type: ignore[arg-type]


SEARCH, CREATE, READ, UPDATE = endpoint("search"), endpoint("create"), endpoint("read"), endpoint("update")
ROUTES = FastRoutes([
    Route("/fgm/FHIR/R4/Flag", SEARCH, methods=["GET"]),
    Route("/fgm/FHIR/R4/Flag", CREATE, methods=["POST"]),
    Route("/fgm/FHIR/R4/Flag/{id}", READ, methods=["GET"]),
    Route("/fgm/FHIR/R4/Flag/{id}", UPDATE, methods=["PUT"]),
    Route("/web/page", lambda request: PlainTextResponse("a page"), methods=["GET"]),  # not an Endpoint
    Route("/fgm/{kind}/{id}", endpoint("two-params"), methods=["GET"]),  # more than a trailing id: Starlette's
])


def scope(method: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, **extra}


def test_exact_paths_and_a_trailing_id_are_found_with_their_path_params() -> None:
    found = scope("GET", "/fgm/FHIR/R4/Flag")
    assert ROUTES.match(found) is SEARCH and found["path_params"] == {}
    assert ROUTES.match(scope("POST", "/fgm/FHIR/R4/Flag")) is CREATE
    with_id = scope("PUT", "/fgm/FHIR/R4/Flag/7f9c2ad4")
    assert ROUTES.match(with_id) is UPDATE and with_id["path_params"] == {"id": "7f9c2ad4"}
    assert ROUTES.match(scope("GET", "/fgm/FHIR/R4/Flag/7f9c2ad4")) is READ


def test_everything_else_is_left_to_starlette() -> None:
    for unmatched in (
        scope("DELETE", "/fgm/FHIR/R4/Flag"),  # Starlette answers 405
        scope("HEAD", "/fgm/FHIR/R4/Flag"),  # Starlette's GET without a body
        scope("GET", "/fgm/FHIR/R4/Flag/"),  # an empty id
        scope("GET", "/fgm/FHIR/R4/Flag/a/b"),
        scope("GET", "/web/page"),
        scope("GET", "/fgm/x/y"),
        scope("GET", "/fgm/FHIR/R4/Flag", root_path="/mounted"),
        {"type": "websocket", "path": "/fgm/FHIR/R4/Flag"},
    ):
        assert ROUTES.match(unmatched) is None, unmatched
