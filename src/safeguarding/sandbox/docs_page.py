"""The interactive API explorer at ``/_docs``, in sandbox mode only: Swagger UI (from npm's swagger-ui-dist,
copied into ``sandbox/explorer`` by scripts/install-supplier-tools) over the service's own ``/_openapi``.

Everything is served from here (no CDN), under a Content-Security-Policy that allows this origin only:
the page's one script is a file, never inline. Without the assets (npm was missing), ``/_docs`` is not
served at all.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

ASSETS = Path(__file__).with_name("explorer")
_FILES = {"swagger-ui.css": "text/css; charset=utf-8", "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
          "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8", "favicon-32x32.png": "image/png"}
# The one inline style Swagger UI 5.35.0 inserts is allowed by its hash (a new version: the browser test
# tests/supplier/test_collection.py names the new hash).
CSP = ("default-src 'none'; script-src 'self'; "
       "style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_INITIALISER = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/_openapi",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    validatorUrl: null,
    tryItOutEnabled: true
  });
});
"""
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>safeguarding sandbox: API explorer</title>
<link rel="icon" type="image/png" href="/_docs/favicon-32x32.png">
<link rel="stylesheet" href="/_docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/_docs/swagger-ui-bundle.js"></script>
<script src="/_docs/swagger-ui-standalone-preset.js"></script>
<script src="/_docs/explorer.js"></script>
</body></html>
"""


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": CSP}


async def page(_: Request) -> Response:
    return HTMLResponse(_PAGE, headers=_headers())


async def initialiser(_: Request) -> Response:
    return Response(_INITIALISER, media_type="text/javascript; charset=utf-8", headers=_headers())


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _FILES:
        return Response(status_code=404, headers=_headers())
    return FileResponse(ASSETS / name, media_type=_FILES[name], headers=_headers())


def docs_routes(sandbox: bool) -> list[BaseRoute]:
    """``/_docs`` and its assets: in the sandbox, when the assets were installed; otherwise nothing."""
    if not sandbox or not (ASSETS / "swagger-ui-bundle.js").exists():
        return []
    return [Route("/_docs", page, methods=["GET"]), Route("/_docs/explorer.js", initialiser, methods=["GET"]),
            Route("/_docs/{name}", asset, methods=["GET"])]
