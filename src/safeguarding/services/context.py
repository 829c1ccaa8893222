"""What a service needs to know about the request it serves, for rules and for audit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..domain.audit import AuditEvent
from ..domain.caller import ANONYMOUS, Caller
from ..domain.errors import DomainError

if TYPE_CHECKING:
    from ..api.wire import WireFacts

# (status, outcome code) as the caller is told them: the API adapter decides, the audit records it.
Outcome = tuple[int, str]


class Told(Protocol):
    """A row of an adapter's error table (``api/errors.py`` ErrorRow), as far as the audit reads it."""

    @property
    def outcome(self) -> Outcome: ...


@dataclass(frozen=True)
class Outcomes:
    """What the caller is told, handed down by the adapter as data: its error table (the very rows its
    response is rendered from), its success, and how a search that finds nothing is told (``nothing_found``;
    None: as a success). The service audits with it; the adapter answers from the same row, found by the
    same look-up (``row``). A broken rule the table does not name is told as (``unnamed``, its domain code),
    or, with ``unnamed`` None (the APIs), is a programming error: raised again, it becomes a 500."""

    success: Outcome = (200, "OK")
    table: Mapping[type[DomainError], Told] = field(default_factory=dict)
    unnamed: int | None = 400
    nothing_found: Outcome | None = None

    def row(self, error: DomainError) -> Told | None:
        """The table's row for a broken rule, through the error's class hierarchy."""
        for kind in type(error).__mro__:
            row = self.table.get(kind)
            if row is not None:
                return row
        return None

    def of(self, error: DomainError) -> Outcome:
        row = self.row(error)
        if row is not None:
            return row.outcome
        if self.unnamed is None:
            raise error
        return self.unnamed, error.code

    def searched(self, found: bool) -> Outcome:
        return self.success if found or self.nothing_found is None else self.nothing_found


@dataclass
class RequestContext:
    api: str
    interaction: str
    request_id: str
    correlation_id: str | None = None
    trace_id: str | None = None
    caller: Caller = ANONYMOUS
    outcomes: Outcomes = field(default_factory=Outcomes)
    nhs_number: str | None = None
    resource_id: str | None = None
    audited: bool = field(default=False)
    wire: WireFacts | None = None  # what the client sent, for the assurance report (api/wire.py)

    def audit_event(self, recorded_at: str, outcome: Outcome) -> AuditEvent:
        user, system = self.caller.user, self.caller.system
        # Positional, in AuditEvent's field order (named in the comments): one is made for every request, and
        # seventeen keywords cost half as much again as the fields by position (tests/unit/test_audit_event_fields.py
        # pins the order).
        return AuditEvent(
            recorded_at,  # recorded_at
            self.api,  # api
            self.interaction,  # interaction
            outcome[0],  # status
            outcome[1],  # outcome
            self.request_id,  # request_id
            self.correlation_id,  # correlation_id
            self.trace_id,  # trace_id
            system.asid if system else None,  # system_asid
            system.ods_code if system else None,  # system_ods
            user.user_id if user else None,  # user_id
            user.role_profile_id if user else None,  # role_profile_id
            user.role_code if user else None,  # role_code
            user.org_code if user else (system.ods_code if system else None),  # org_code
            self.nhs_number,  # nhs_number
            self.resource_id,  # resource_id
            self.wire.encode(user is not None) if self.wire is not None else None,  # wire
        )
