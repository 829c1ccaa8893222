"""The OpenAPI description published at ``/_openapi`` is valid and true to the app's routes."""

from __future__ import annotations

import schemathesis
from starlette.routing import Route

from safeguarding.api.openapi import FGM_R4, openapi_document
from safeguarding.app import create_app
from safeguarding.settings import sandbox_settings

from ..support import Server

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def _documented() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in openapi_document()["paths"].items()
            for method in item if method in METHODS}


def test_the_document_is_served_as_written(server: Server) -> None:
    with server.client() as http:
        response = http.get(f"{server.base}/_openapi")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == openapi_document()


def test_the_document_is_valid_openapi_3_1() -> None:
    schema = schemathesis.openapi.from_dict(openapi_document())  # validates against the OpenAPI 3.1 schema
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(op.path, op.method.upper()) for op in operations} == _documented()
    for operation in operations:
        assert "500" in operation.definition.raw["responses"] and "400" in operation.definition.raw["responses"]


def test_documented_paths_and_methods_are_exactly_the_apps_r4_routes(server: Server) -> None:
    app = create_app(sandbox_settings(server.data_dir, database_url=server.database_url))
    try:
        routes = {(route.path, method) for route in app.routes if isinstance(route, Route)
                  for method in (route.methods or ()) if method != "HEAD"}
    finally:
        app.state.services.store.close()
    assert ("/_openapi", "GET") in routes
    assert {(path, method) for path, method in routes if path.startswith(FGM_R4)} == _documented()


def test_every_documented_operation_is_secured_unless_public() -> None:
    document = openapi_document()
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "A CIS2-shaped JWT from a trusted issuer (docs/security.md)."}
    public = {path for path, item in document["paths"].items() for method, operation in item.items()
              if method in METHODS and operation.get("security") == []}
    assert public == {f"{FGM_R4}/metadata"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS and path not in public:
                assert {"401", "403"} <= set(operation["responses"]), (path, method)
