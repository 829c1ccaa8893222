"""Why a caller was turned away. ``reason`` is for server logs: it never contains token content."""

from __future__ import annotations


class SecurityError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthenticationFailed(SecurityError):
    """No credentials, or credentials that do not verify (answer 401)."""


class RoleSelectionFailed(SecurityError):
    """A valid token, but the role to act in is missing or not the user's (answer 400)."""


class AccessDenied(SecurityError):
    """Authenticated, but not allowed to do this (answer 403)."""
