"""Authenticators for the pipeline: who is calling, as a typed ``Caller``.

People (clinicians) present CIS2-shaped bearer tokens; systems (local authorities) present client
certificates the TLS layer has already verified against the configured CA.
"""

from __future__ import annotations

from ..domain.caller import Caller
from ..security.errors import AccessDenied
from ..security.rbac import Operation, authorise
from ..security.registry import RegistryFile
from ..security.tokens import TokenVerifier
from .pipeline import ApiRequest, Authenticator, Authoriser, bearer_token, first_header


def bearer(verifier: TokenVerifier) -> Authenticator:
    def authenticate(request: ApiRequest) -> Caller:
        user = verifier.verify(bearer_token(request.headers), first_header(request.headers, "nhsd-session-urid"))
        return Caller(user=user)

    return authenticate


def client_certificate(registry: RegistryFile) -> Authenticator:
    """The registered system of the verified client certificate. No certificate, or one that is not
    registered, is refused as access denied (403): a system either is known or it is not."""

    def authenticate(request: ApiRequest) -> Caller:
        if request.client_cert is None:
            raise AccessDenied("no client certificate")
        system = registry.current().system_for_certificate(request.client_cert)
        if system is None:
            raise AccessDenied("client certificate not registered")
        return Caller(system=system)

    return authenticate


def allowed(operation: Operation) -> Authoriser:
    """The authorisation of one operation (``security/rbac.py``): the caller must be allowed it."""

    def check(caller: Caller) -> None:
        authorise(caller, operation)

    return check
