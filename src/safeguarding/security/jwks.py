"""An issuer's signing keys, fetched over HTTPS: from a configured JWKS URL, or found by OpenID Connect
discovery (``{issuer}/.well-known/openid-configuration`` -> ``jwks_uri``, the document's ``issuer`` being
exactly the configured one).

- A fetched key set is trusted for ``lifespan`` seconds (300), then fetched again.
- A token whose ``kid`` is not in the cached set makes one refetch at once (the issuer has rotated its
  key), at most once every ``refetch_interval`` seconds (30) per issuer, so unknown kids cannot make the
  service hammer the issuer.
- The key set cannot be fetched (issuer down, a TLS failure, an answer that is not a key set, a discovery
  document naming another issuer): ``KeySetUnavailable``, answered as the service being unavailable (503
  with ``Retry-After``) and logged as ``ISSUER_KEYS_UNAVAILABLE`` with the reason; a key set already
  fetched keeps working until its lifespan ends.
- Outbound TLS trusts the system's store (which honours ``SSL_CERT_FILE``), or only ``ca_file`` if given.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import jwt
import orjson

from ..store.interface import StoreUnavailable
from .errors import AuthenticationFailed
from .tls_policy import apply_tls_policy

if TYPE_CHECKING:
    import httpx  # imported when a provider is first called: a worker with none configured never loads it

log = logging.getLogger(__name__)
T = TypeVar("T")

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT = 256 * 1024


class KeySetUnavailable(StoreUnavailable):
    """The issuer's keys (or its discovery document) cannot be fetched: the service is unavailable, not the
    caller refused. A ``StoreUnavailable``, so every API answers it as its own "service unavailable"."""


class ProviderError(Exception):
    """An identity provider's answer could not be had or used; ``reason`` names why (no token content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def tls_context(ca_file: Path | str | None) -> ssl.SSLContext:
    """Trust for outbound TLS: only ``ca_file`` if given, else the system's store (``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` are honoured by OpenSSL's default paths), under the service's TLS policy."""
    return apply_tls_policy(ssl.create_default_context(cafile=str(ca_file) if ca_file else None))


def checked_url(name: str, value: object) -> str:
    """A provider URL: https, or http on a loopback address only (local providers and tests)."""
    if not isinstance(value, str) or not value:
        raise ProviderError(f"{name} is not a URL")
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost"):
        return value
    raise ProviderError(f"{name} is not an https URL")


def get_json(http: httpx.Client, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """GET a JSON object, at most ``MAX_DOCUMENT`` bytes; any failure is a ``ProviderError``."""
    import httpx

    try:
        with http.stream("GET", url, headers={"Accept": "application/json", **(headers or {})}) as response:
            if response.status_code != 200:
                raise ProviderError(f"answered {response.status_code}")
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT:
                    raise ProviderError("answer too large")
    except httpx.HTTPError as exc:
        raise ProviderError(f"unreachable ({type(exc).__name__})") from None
    except ssl.SSLError:
        raise ProviderError("TLS failure") from None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProviderError("answer is not JSON") from None
    if not isinstance(parsed, dict):
        raise ProviderError("answer is not a JSON object")
    return parsed


def discover(http: httpx.Client, issuer: str) -> dict[str, Any]:
    """The issuer's OpenID Connect discovery document, checked to name this very issuer."""
    document = get_json(http, issuer.rstrip("/") + DISCOVERY_PATH)
    if document.get("issuer") != issuer:
        raise ProviderError("discovery document names another issuer")
    return document


@dataclass
class _Fetched:
    keys: list[jwt.PyJWK]
    at: float


class IssuerKeys:
    """The signing keys of one issuer, by ``kid``; thread-safe (fetches run off the event loop)."""

    def __init__(self, issuer: str, *, jwks_url: str | None = None, jwks_file: str | None = None,
                 ca_file: Path | str | None = None, timeout: float = 5.0, lifespan: float = 300.0,
                 refetch_interval: float = 30.0) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.jwks_file = jwks_file
        self.ca_file = ca_file
        self._timeout = timeout
        self._lifespan = lifespan
        self._refetch_interval = refetch_interval
        self._fetched: _Fetched | None = None
        self._last_attempt = self._last_refetch = float("-inf")
        self._discovered: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None

    @property
    def remote(self) -> bool:
        return self.jwks_file is None

    def http(self) -> httpx.Client:
        if self._http is None:
            import httpx

            self._http = httpx.Client(verify=tls_context(self.ca_file), timeout=self._timeout,
                                      follow_redirects=False, trust_env=False)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def discovery(self) -> dict[str, Any]:
        """The discovery document (fetched once, and again whenever the key set is fetched)."""
        with self._lock:
            if self._discovered is None:
                self._discovered = self._unavailable_on_error(lambda: discover(self.http(), self.issuer))
            return self._discovered

    def key_for(self, kid: str | None) -> jwt.PyJWK:
        keys = self._keys(refetch=False)
        key = _find(keys, kid)
        if key is None and kid is not None and self.remote:
            key = _find(self._keys(refetch=True), kid)
        if key is None:
            if kid is None:
                raise AuthenticationFailed("token has no kid and the issuer has several keys")
            raise AuthenticationFailed("unknown kid")
        return key

    def _keys(self, refetch: bool) -> list[jwt.PyJWK]:
        with self._lock:
            now = time.monotonic()
            fetched = self._fetched
            if self.jwks_file is not None:
                if fetched is None:
                    fetched = self._fetched = _Fetched(_parse(_read_file(self.jwks_file)), now)
                return fetched.keys
            if fetched is not None and now - fetched.at < self._lifespan:
                if not refetch or now - self._last_refetch < self._refetch_interval:
                    return fetched.keys  # fresh, or rotation already looked for a moment ago
                self._last_attempt = self._last_refetch = now
                try:
                    keys = self._unavailable_on_error(self._fetch)
                except KeySetUnavailable:
                    return fetched.keys  # a failed rotation check: the cached set still stands
            else:
                if now - self._last_attempt < 1.0:
                    # the issuer failed a moment ago: do not queue a fetch per request while it is down
                    raise KeySetUnavailable(f"keys of {self.issuer} unavailable")
                self._last_attempt = now
                keys = self._unavailable_on_error(self._fetch)
            self._fetched = _Fetched(keys, now)
            return keys

    def _fetch(self) -> list[jwt.PyJWK]:
        url = self.jwks_url
        if url is None:
            self._discovered = discover(self.http(), self.issuer)
            url = checked_url("jwks_uri", self._discovered.get("jwks_uri"))
        return _parse(get_json(self.http(), url))

    def _unavailable_on_error(self, fetch: Callable[[], T]) -> T:
        try:
            return fetch()
        except ProviderError as exc:
            log.warning("issuer keys unavailable", extra={"event": "ISSUER_KEYS_UNAVAILABLE",
                                                          "issuer": self.issuer, "reason": exc.reason})
            raise KeySetUnavailable(f"keys of {self.issuer} unavailable: {exc.reason}") from None


def _find(keys: list[jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((key for key in keys if key.key_id == kid), None)


def _read_file(path: str) -> dict[str, Any]:
    parsed = orjson.loads(Path(path).read_bytes())
    if not isinstance(parsed, dict):
        raise ValueError(f"{path} is not a JWKS document")
    return parsed


def _parse(document: dict[str, Any]) -> list[jwt.PyJWK]:
    try:
        keys = jwt.PyJWKSet.from_dict(document).keys
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        raise ProviderError("answer is not a usable key set") from None
    return [key for key in keys if key.public_key_use in (None, "sig")]
