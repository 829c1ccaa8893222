"""Cross-site request forgery protection for every POST.

Two independent checks, both required:

1. The synchroniser token: every form carries the session's CSRF secret in a hidden field, compared in
   constant time. A page on another site cannot read it (the session cookie is HttpOnly and
   SameSite=Strict, and the secret is only ever written into our own pages).
2. The request's origin: when the browser says where the request comes from (``Origin``,
   ``Sec-Fetch-Site``), it must be this site.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.datastructures import Headers

FIELD = "csrf_token"


def token_ok(expected: str | None, submitted: str | None) -> bool:
    if not expected or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def origin_ok(headers: Headers, own_origin: str) -> bool:
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True  # older browsers and non-browser clients: the token alone decides
    return _normal(origin) == _normal(own_origin)


def _normal(origin: str) -> str:
    parts = urlsplit(origin.strip().lower())
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"
