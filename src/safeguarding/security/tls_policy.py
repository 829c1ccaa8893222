"""The TLS policy of every server and client of the service: Mozilla's "intermediate" configuration.

TLS 1.2 and 1.3 only; in TLS 1.2 the ECDHE key exchanges with AEAD ciphers only (AES-GCM, ChaCha20-Poly1305:
no CBC, no RSA key exchange, no finite-field DHE); key exchange groups X25519, P-256 and P-384 only (not
X448, P-521 or the finite-field groups OpenSSL offers by default); no compression, no renegotiation.
TLS 1.3's own suites are all AEAD and stay as OpenSSL sets them.

Python's ``ssl`` module can set a group list only from Python 3.13 (``SSLContext.set_groups``); before that
the list is set with OpenSSL's ``SSL_CTX_set1_groups_list`` called through ``ctypes`` on the context's own
``SSL_CTX`` (found in the context object and checked against the context's options before it is used).
"""

from __future__ import annotations

import ctypes
import ssl
from typing import Any

TLS12_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
))
GROUPS = ("X25519", "P-256", "P-384")
_OPENSSL_GROUPS = "X25519:prime256v1:secp384r1"
_SSL_CTRL_SET_GROUPS_LIST = 92  # OpenSSL's ssl.h: SSL_CTX_set1_groups_list is SSL_CTX_ctrl with this command


class TlsPolicyError(RuntimeError):
    """The policy could not be applied (the server or client must not start with OpenSSL's defaults)."""


def apply_tls_policy(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """Narrow ``ctx`` (a server's or a client's) to the policy; returns it."""
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    _set_groups(ctx, _OPENSSL_GROUPS)
    return ctx


def policy_context_factory(_config: Any, default_factory: Any) -> ssl.SSLContext:
    """uvicorn's ``ssl_context_factory``: its usual context (certificate, key, client CA), under the policy."""
    return apply_tls_policy(default_factory())


def _set_groups(ctx: ssl.SSLContext, groups: str) -> None:
    setter = getattr(ctx, "set_groups", None)
    if setter is not None:  # Python 3.13 and later
        setter(groups)
        return
    library = _libssl()
    pointer = _ssl_ctx_pointer(ctx, library)
    if library.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0, groups.encode()) != 1:
        raise TlsPolicyError(f"OpenSSL refused the key exchange groups {groups}")


def _libssl() -> Any:
    """The OpenSSL that Python's ``ssl`` module itself uses (its extension module's own dependency)."""
    import _ssl

    library = ctypes.CDLL(_ssl.__file__)
    library.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    library.SSL_CTX_ctrl.restype = ctypes.c_long
    library.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    library.SSL_CTX_get_options.restype = ctypes.c_uint64
    return library


def _ssl_ctx_pointer(ctx: ssl.SSLContext, library: Any) -> int:
    """The ``SSL_CTX *`` that CPython keeps right after the object header of an ``SSLContext``."""
    pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not pointer or library.SSL_CTX_get_options(pointer) != int(ctx.options):
        raise TlsPolicyError("cannot reach the OpenSSL context of this Python's ssl module")
    return pointer
