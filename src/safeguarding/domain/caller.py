"""Who is calling: the typed result of authentication, used by authorisation and audit."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Activity(str, Enum):
    """National RBAC activity codes used by these services."""

    FGM_VIEW = "B0370"
    FGM_UPDATE = "B0380"
    CPIS_VIEW_UNSCHEDULED = "B0107"
    CPIS_VIEW_SCHEDULED = "B0170"


@dataclass(frozen=True)
class User:
    """A person with a selected national RBAC role (from a CIS2-shaped token)."""

    user_id: str
    role_profile_id: str
    org_code: str
    activities: frozenset[str] = field(default_factory=frozenset)
    role_code: str | None = None
    role_name: str | None = None
    org_name: str | None = None
    name: str | None = None

    def holds(self, activity: Activity) -> bool:
        # An Activity is the str of its code (hashed and compared as it): no ``.value`` look-up (an enum property,
        # a Python call) on every authorisation.
        return activity in self.activities


class SystemKind(str, Enum):
    CLINICAL = "clinical-system"
    LOCAL_AUTHORITY = "local-authority"


@dataclass(frozen=True)
class System:
    """An accredited system identified by its verified client certificate."""

    asid: str
    ods_code: str
    kind: SystemKind
    interactions: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Caller:
    """Everything known about the caller of one request. Either part may be absent."""

    user: User | None = None
    system: System | None = None

    @property
    def anonymous(self) -> bool:
        return self.user is None and self.system is None


ANONYMOUS = Caller()
