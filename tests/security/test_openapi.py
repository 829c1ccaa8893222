"""The OpenAPI description published at ``/_openapi`` is valid and true to the app's routes."""

from __future__ import annotations

import schemathesis
from starlette.routing import Route

from safeguarding.api.openapi import CPIS_R4, FGM_R4, openapi_document
from safeguarding.app import create_app
from safeguarding.settings import sandbox_settings

from ..support import Server

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
R4_BASES = (FGM_R4, CPIS_R4)
# The local authority interactions of CP-IS (client certificates); every other secured one is a clinician's.
AUTHORITY_OPERATIONS = {(CPIS_R4, "post"), (f"{CPIS_R4}/notifications", "get"),
                        (f"{CPIS_R4}/notifications/$acknowledge", "post")}


def _documented(dstu2: bool = False) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in openapi_document(dstu2=dstu2)["paths"].items()
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
    assert {(op.path, op.method.upper()) for op in operations} == _documented(dstu2=True)
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
    r4 = {(path, method) for path, method in routes
          if any(path == base or path.startswith(f"{base}/") for base in R4_BASES)}
    assert {path for path, _ in r4 if path.startswith(CPIS_R4)}, "no CP-IS routes"
    assert r4 == _documented()


def test_every_documented_operation_is_secured_unless_public() -> None:
    document = openapi_document(dstu2=False)  # the DSTU2 paths: tests/supplier/test_collection.py
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "A CIS2-shaped JWT from a trusted issuer (docs/security.md)."}
    assert document["components"]["securitySchemes"]["mutualTLS"]["type"] == "mutualTLS"
    operations = {(path, method): operation for path, item in document["paths"].items()
                  for method, operation in item.items() if method in METHODS}
    public = {path for (path, _), operation in operations.items() if operation.get("security") == []}
    assert public == {f"{FGM_R4}/metadata", f"{CPIS_R4}/metadata"}
    mutual_tls = {key for key, operation in operations.items() if operation.get("security") == [{"mutualTLS": []}]}
    assert mutual_tls == AUTHORITY_OPERATIONS
    for (path, method), operation in operations.items():
        if path in public:
            continue
        if (path, method) in AUTHORITY_OPERATIONS:
            # No certificate, or not a registered local authority: 403 ACCESS_DENIED; there is no 401 challenge.
            assert "403" in operation["responses"] and "401" not in operation["responses"], (path, method)
        else:
            assert "security" not in operation, (path, method)  # the document's default: bearer
            assert {"401", "403"} <= set(operation["responses"]), (path, method)
