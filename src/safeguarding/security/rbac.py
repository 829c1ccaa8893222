"""Authorisation: one explicit function of caller and operation."""

from __future__ import annotations

from enum import Enum

from ..domain.caller import Activity, Caller
from .errors import AccessDenied, AuthenticationFailed


class Operation(str, Enum):
    FGM_SEARCH = "fgm.search"
    FGM_READ = "fgm.read"
    FGM_CREATE = "fgm.create"
    FGM_REMOVE = "fgm.remove"


_USER_ACTIVITY = {
    Operation.FGM_SEARCH: Activity.FGM_VIEW,
    Operation.FGM_READ: Activity.FGM_VIEW,
    Operation.FGM_CREATE: Activity.FGM_UPDATE,
    Operation.FGM_REMOVE: Activity.FGM_UPDATE,
}


def authorise(caller: Caller, operation: Operation) -> None:
    """Return if ``caller`` may perform ``operation``; raise otherwise."""
    if caller.user is None:
        raise AuthenticationFailed("no user")
    if not caller.user.holds(_USER_ACTIVITY[operation]):
        raise AccessDenied(f"role lacks {_USER_ACTIVITY[operation].value}")
