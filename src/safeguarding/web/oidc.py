"""Sign-in with the organisation's OpenID Connect provider (CIS2-shaped): the authorization-code flow
with PKCE (S256), ``state`` and ``nonce``.

1. ``start()``: a fresh state, nonce and PKCE verifier (kept in a short-lived encrypted cookie) and the
   provider's authorization URL.
2. ``finish(code, ...)``: the code is exchanged at the token endpoint (client secret, PKCE verifier);
   the ID token is verified (an allowed asymmetric algorithm, the provider's JWKS key by ``kid``,
   ``iss``, ``aud`` = our client id, ``exp``/``iat``, ``nonce``); the UserInfo claims (national RBAC
   roles, organisations) are fetched with the access token and must name the same ``sub``.

The result is the CIS2 claims; the role is then chosen by the same rules as the API
(``security.tokens.user_from_claims``). The provider's keys are held as the API holds a trusted issuer's
(``security.jwks.IssuerKeys``: cached 5 minutes, an unknown ``kid`` refetched at once at most every 30 s,
the provider unreachable answered as the service being unavailable), and every call to the provider goes
over httpx with the same TLS trust (the system's store, or ``ca_file``), off the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
from dataclasses import dataclass
from typing import Any

import jwt
import orjson

from .. import inline
from ..security.errors import AuthenticationFailed
from ..security.jwks import MAX_DOCUMENT, IssuerKeys, ProviderError, checked_url
from ..security.tokens import ALLOWED_ALGORITHMS, is_numeric_date
from .config import CALLBACK_PATH, OidcSettings

TIMEOUT = 10


@dataclass(frozen=True)
class Started:
    url: str
    state: str
    nonce: str
    verifier: str


class OidcClient:
    def __init__(self, settings: OidcSettings, base_url: str) -> None:
        self.settings = settings
        self.redirect_uri = settings.redirect_uri or base_url.rstrip("/") + CALLBACK_PATH
        self._keys = IssuerKeys(settings.issuer, jwks_url=settings.jwks_uri, ca_file=settings.ca_file,
                                timeout=TIMEOUT)

    def endpoint(self, name: str) -> str | None:
        """The provider's ``name`` endpoint: as configured, else from its discovery document (held by the same
        ``IssuerKeys`` that holds its keys: unreachable is the service being unavailable)."""
        configured: str | None = getattr(self.settings, name)
        if configured is not None:
            return configured
        found = inline.blocking(self._keys.discovery).get(name)
        if found is None and name == "userinfo_endpoint":
            return None
        try:
            url = checked_url(name, found)
        except ProviderError as exc:
            raise AuthenticationFailed(f"discovery document: {exc.reason}") from None
        if name == "authorization_endpoint" and not url.startswith(self.settings.authorization_origin + "/"):
            # The page's CSP lets forms lead only to the issuer's origin: configure the endpoint to use another.
            raise AuthenticationFailed("discovered authorization endpoint is not on the issuer's origin")
        return url

    def start(self) -> Started:
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        query = urllib.parse.urlencode({
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "prompt": "login",
        })
        authorize = self.endpoint("authorization_endpoint")
        separator = "&" if "?" in str(authorize) else "?"
        return Started(f"{authorize}{separator}{query}", state, nonce, verifier)

    def finish(self, code: str, nonce: str, verifier: str) -> dict[str, Any]:
        tokens = self._call("POST", str(self.endpoint("token_endpoint")), data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.decode(),
        })
        id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise AuthenticationFailed("token response lacks id_token or access_token")
        claims = self._verify_id_token(id_token, nonce)
        userinfo = self.endpoint("userinfo_endpoint")
        if userinfo:
            info = self._call("GET", userinfo,
                              headers={"Authorization": f"Bearer {access_token}"})
            if info.get("sub") != claims.get("sub"):
                raise AuthenticationFailed("userinfo is about another subject")
            # The ID token's selected role stands; UserInfo adds the roles and organisations.
            claims = info | {k: claims[k] for k in ("selected_roleid",) if k in claims}
        return claims

    def _verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(f"id token rejected ({type(exc).__name__})") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthenticationFailed("id token algorithm not allowed")
        kid = header.get("kid")
        key = inline.blocking(self._keys.key_for, kid if isinstance(kid, str) else None)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=[alg], audience=self.settings.client_id, issuer=self.settings.issuer,
                leeway=30, options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(f"id token rejected ({type(exc).__name__})") from exc
        if not all(is_numeric_date(claims[name]) for name in ("exp", "nbf", "iat") if name in claims):
            raise AuthenticationFailed("id token time claim is not a NumericDate")
        if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(claims["nonce"], nonce):
            raise AuthenticationFailed("id token nonce does not match")
        return claims

    def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        # Only https URLs, or http on loopback, reach here (web/config.py checks every endpoint).
        return inline.blocking(self._request, method, url, kwargs)

    def _request(self, method: str, url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        import httpx  # loaded with the provider's first call (security/jwks.py)

        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        try:
            response = self._keys.http().request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise AuthenticationFailed(f"provider unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise AuthenticationFailed(f"provider answered {response.status_code}")
        if len(response.content) > MAX_DOCUMENT:
            raise AuthenticationFailed("provider response too large")
        try:
            parsed = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise AuthenticationFailed("provider response is not JSON") from None
        if not isinstance(parsed, dict):
            raise AuthenticationFailed("provider response is not a JSON object")
        return parsed
