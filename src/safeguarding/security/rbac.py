"""Authorisation: one explicit function of caller and operation."""

from __future__ import annotations

from enum import Enum

from ..domain.caller import Activity, Caller, SystemKind
from .errors import AccessDenied, AuthenticationFailed


class Operation(str, Enum):
    FGM_SEARCH = "fgm.search"
    FGM_READ = "fgm.read"
    FGM_CREATE = "fgm.create"
    FGM_REMOVE = "fgm.remove"
    CPIS_CARETEAM_SEARCH = "cpis.careteam.search"
    CPIS_HISTORY_SEARCH = "cpis.history.search"
    CPIS_ALERT = "cpis.alert"
    CPIS_UPLOAD = "cpis.upload"
    CPIS_FEED = "cpis.notifications.read"
    CPIS_ACKNOWLEDGE = "cpis.notifications.acknowledge"


# Either CP-IS view activity lets a clinician see plans: B0107 records unscheduled accesses, B0170 is
# the silent (scheduled) read. Whether an access is recorded is a domain rule (domain/cpis.py).
_CPIS_VIEW = frozenset({Activity.CPIS_VIEW_UNSCHEDULED, Activity.CPIS_VIEW_SCHEDULED})

# Operations for people: the role must hold one of these activities.
_USER_ACTIVITIES: dict[Operation, frozenset[Activity]] = {
    Operation.FGM_SEARCH: frozenset({Activity.FGM_VIEW}),
    Operation.FGM_READ: frozenset({Activity.FGM_VIEW}),
    Operation.FGM_CREATE: frozenset({Activity.FGM_UPDATE}),
    Operation.FGM_REMOVE: frozenset({Activity.FGM_UPDATE}),
    Operation.CPIS_CARETEAM_SEARCH: _CPIS_VIEW,
    Operation.CPIS_HISTORY_SEARCH: _CPIS_VIEW,
    Operation.CPIS_ALERT: _CPIS_VIEW,
}

# The same as the activities' codes, as a role holds them (``User.activities``): authorising is then one set
# operation, not a generator and two enum look-ups an activity.
_USER_ACTIVITY_CODES: dict[Operation, frozenset[str]] = {
    operation: frozenset(activity.value for activity in activities)
    for operation, activities in _USER_ACTIVITIES.items()
}

# Operations for systems: the registered system must be of this kind. Each local authority's own
# plans and notifications are selected by its ODS code in the service, never by the request.
_SYSTEM_KINDS: dict[Operation, SystemKind] = {
    Operation.CPIS_UPLOAD: SystemKind.LOCAL_AUTHORITY,
    Operation.CPIS_FEED: SystemKind.LOCAL_AUTHORITY,
    Operation.CPIS_ACKNOWLEDGE: SystemKind.LOCAL_AUTHORITY,
}


def authorise(caller: Caller, operation: Operation) -> None:
    """Return if ``caller`` may perform ``operation``; raise otherwise."""
    kind = _SYSTEM_KINDS.get(operation)
    if kind is not None:
        if caller.system is None or caller.system.kind is not kind:
            raise AccessDenied(f"caller is not a {kind.value} system")
        return
    if caller.user is None:
        raise AuthenticationFailed("no user")
    needed = _USER_ACTIVITY_CODES[operation]
    if needed.isdisjoint(caller.user.activities):  # holds none of them (``User.holds``, for each)
        raise AccessDenied(f"role lacks {' or '.join(sorted(needed))}")
