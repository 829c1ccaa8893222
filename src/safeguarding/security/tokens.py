"""Bearer-token authentication for the R4 APIs: CIS2-shaped JWTs from trusted issuers.

Checks, in order: an allowed asymmetric algorithm (never ``none``, never HMAC, so a public key can
never be used as a shared secret), a trusted issuer, a key from that issuer's JWKS matching the
token's ``kid`` and algorithm family, the signature, ``aud``, ``exp``/``nbf``/``iat``; then the role
the user acts in (``selected_roleid`` claim or ``NHSD-Session-URID`` header, else the only role).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import jwt

from .. import inline
from ..domain.caller import User
from .errors import AuthenticationFailed, RoleSelectionFailed
from .jwks import IssuerKeys, KeySetUnavailable, ProviderError, checked_url, get_json

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
_KEY_TYPE_FOR_ALG_PREFIX = {"RS": "RSA", "PS": "RSA", "ES": "EC"}


ROLE_SOURCES = ("token", "userinfo")


@dataclass
class TrustedIssuer:
    """An issuer whose tokens are accepted for ``audience``. Its keys come from ``jwks_file``, ``jwks_url``, or
    (neither given) OpenID Connect discovery (``security.jwks``). The user's national RBAC roles come from
    the token's own claims (``roles = "token"``) or from the issuer's UserInfo endpoint called with the token
    (``roles = "userinfo"``; ``userinfo_url``, else the discovered ``userinfo_endpoint``)."""

    issuer: str
    audience: str
    jwks_file: str | None = None
    jwks_url: str | None = None
    ca_file: str | None = None
    roles: str = "token"
    userinfo_url: str | None = None
    _keys: IssuerKeys | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.roles not in ROLE_SOURCES:
            raise ValueError(f"roles must be one of {', '.join(ROLE_SOURCES)}")

    @property
    def keys(self) -> IssuerKeys:
        if self._keys is None:
            self._keys = IssuerKeys(self.issuer, jwks_url=self.jwks_url, jwks_file=self.jwks_file,
                                    ca_file=self.ca_file)
        return self._keys

    @property
    def remote(self) -> bool:
        return self.jwks_file is None

    def key_for(self, kid: str | None) -> jwt.PyJWK:
        return self.keys.key_for(kid)

    def userinfo(self, token: str) -> dict[str, Any]:
        """The UserInfo claims for this access token (a network call: run it off the event loop)."""
        url = self.userinfo_url
        try:
            if url is None:
                url = checked_url("userinfo_endpoint", self.keys.discovery().get("userinfo_endpoint"))
            return get_json(self.keys.http(), url, {"Authorization": f"Bearer {token}"})
        except ProviderError as exc:
            if exc.reason in ("answered 401", "answered 403"):
                raise AuthenticationFailed("userinfo refused the token") from None
            log.warning("userinfo unavailable", extra={"event": "USERINFO_UNAVAILABLE", "issuer": self.issuer,
                                                       "reason": exc.reason})
            raise KeySetUnavailable(f"userinfo of {self.issuer} unavailable: {exc.reason}") from None


@dataclass
class _Verified:
    claims: dict[str, Any]
    verified_at: float
    users: dict[str | None, User] = field(default_factory=dict)  # by NHSD-Session-URID, derived once


class VerifiedTokens:
    """Tokens already verified, by SHA-256: a client sends the same token many times, and the signature
    check is the costly part. Expiry and not-before are still checked on every use, and an entry lives at
    most ``max_age`` seconds (as long as a fetched JWKS is trusted), so an issuer withdrawing its key
    takes effect as quickly here as it does for new tokens. Bounded (least recently used out); it keeps
    digests, never tokens."""

    def __init__(self, capacity: int = 4096, max_age: float = 300.0) -> None:
        self._capacity, self._max_age = capacity, max_age
        self._entries: OrderedDict[bytes, _Verified] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, leeway: int) -> dict[str, Any] | None:
        entry = self.entry(token, leeway)
        return entry.claims if entry is not None else None

    def entry(self, token: str, leeway: int) -> _Verified | None:
        key = hashlib.sha256(token.encode()).digest()
        with self._lock:
            cached = self._entries.get(key)
            if cached is None:
                return None
            claims = cached.claims
            now = time.time()
            if (now > claims["exp"] + leeway or now < claims.get("nbf", 0) - leeway
                    or now - cached.verified_at > self._max_age):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return cached

    def put(self, token: str, claims: dict[str, Any]) -> _Verified | None:
        if not is_numeric_date(claims.get("exp")) or not is_numeric_date(claims.get("nbf", 0)):
            return None
        entry = _Verified(claims, time.time())
        with self._lock:
            self._entries[hashlib.sha256(token.encode()).digest()] = entry
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return entry


class TokenVerifier:
    def __init__(self, issuers: list[TrustedIssuer], leeway_seconds: int = 30) -> None:
        self._issuers = {issuer.issuer: issuer for issuer in issuers}
        self._leeway = leeway_seconds
        self._verified = VerifiedTokens()

    def close(self) -> None:
        """Close the connections to remote issuers (they reopen if used again)."""
        for issuer in self._issuers.values():
            if issuer._keys is not None:
                issuer._keys.close()

    def verify(self, token: str, session_urid: str | None = None) -> User:
        entry = self._verified.entry(token, self._leeway)
        if entry is None:
            claims = self._verified_claims(token)
            entry = self._verified.put(token, claims)
            if entry is None:
                return user_from_claims(claims, session_urid)
        user = entry.users.get(session_urid)
        if user is None:
            user = user_from_claims(entry.claims, session_urid)  # a refusal raises, and is never kept
            if len(entry.users) < 8:  # a token names a few roles; a client cycling URIDs gains nothing
                entry.users[session_urid] = user
        return user

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed("token is not a well-formed JWT") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthenticationFailed("token algorithm not allowed")
        claimed_issuer = unverified.get("iss")
        issuer = self._issuers.get(claimed_issuer) if isinstance(claimed_issuer, str) else None
        if issuer is None:
            raise AuthenticationFailed("token issuer not trusted")
        # A remote key set may mean a fetch: off the event loop (inline.blocking), as any network call.
        kid = header.get("kid")
        key = inline.blocking(issuer.key_for, kid) if issuer.remote else issuer.key_for(kid)
        if key.key_type != _KEY_TYPE_FOR_ALG_PREFIX[alg[:2]]:
            raise AuthenticationFailed("token algorithm does not match the key type")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationFailed("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthenticationFailed("token not yet valid") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationFailed("token audience wrong") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthenticationFailed("token signature invalid") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(f"token rejected ({type(exc).__name__})") from exc
        for name in ("exp", "nbf", "iat"):  # RFC 7519: a NumericDate, never a numeric string
            if name in claims and not is_numeric_date(claims[name]):
                raise AuthenticationFailed(f"token {name} is not a NumericDate")
        if issuer.roles == "userinfo":
            info = inline.blocking(issuer.userinfo, token)
            if info.get("sub") != claims.get("sub"):
                raise AuthenticationFailed("userinfo is about another subject")
            # The token's own claims (expiry, selected role) stand; UserInfo adds the roles and organisations.
            claims = {k: v for k, v in info.items() if k in _USERINFO_CLAIMS} | {
                k: v for k, v in claims.items() if k not in _USERINFO_CLAIMS}
        return claims


_USERINFO_CLAIMS = frozenset({"nhsid_useruid", "nhsid_nrbac_roles", "nhsid_user_orgs", "name", "given_name",
                              "family_name"})


def is_numeric_date(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def user_from_claims(claims: dict[str, Any], session_urid: str | None) -> User:
    """Derive the acting user and role from CIS2 claims (standards-compliant role selection)."""
    user_id = _text(claims.get("nhsid_useruid"))
    roles = claims.get("nhsid_nrbac_roles")
    if user_id is None or not isinstance(roles, list) or not all(isinstance(r, dict) for r in roles):
        raise AuthenticationFailed("token lacks nhsid_useruid or nhsid_nrbac_roles")
    claimed = _text(claims.get("selected_roleid"))
    if session_urid is not None and claimed is not None and session_urid != claimed:
        raise RoleSelectionFailed("NHSD-Session-URID differs from selected_roleid")
    by_id = {r.get("person_roleid"): r for r in roles if _text(r.get("person_roleid"))}
    if claimed is not None:
        role = by_id.get(claimed)
        if role is None:
            raise AuthenticationFailed("selected_roleid is not one of the user's roles")
    elif session_urid is not None:
        role = by_id.get(session_urid)
        if role is None:
            raise RoleSelectionFailed("NHSD-Session-URID is not one of the user's roles")
    elif len(by_id) == 1:
        role = next(iter(by_id.values()))
    else:
        raise RoleSelectionFailed("several roles and none selected")
    org_code = _text(role.get("org_code"))
    if org_code is None:
        raise AuthenticationFailed("selected role has no org_code")
    activities = role.get("activity_codes")
    if not isinstance(activities, list):  # a string or object would grant its characters or keys
        activities = []
    org_names = {
        o.get("org_code"): o.get("org_name") for o in claims.get("nhsid_user_orgs") or [] if isinstance(o, dict)
    }
    name = _text(claims.get("name")) or " ".join(
        part for part in (_text(claims.get("given_name")), _text(claims.get("family_name"))) if part
    )
    return User(
        user_id=user_id,
        role_profile_id=str(role["person_roleid"]),
        org_code=org_code,
        activities=frozenset(a for a in activities if isinstance(a, str)),
        role_code=_text(role.get("role_code")),
        role_name=_text(role.get("role_name")),
        org_name=_text(org_names.get(org_code)),
        name=name or None,
    )
