"""What a service needs to know about the request it serves, for rules and for audit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..domain.audit import AuditEvent
from ..domain.caller import ANONYMOUS, Caller
from ..domain.errors import DomainError

if TYPE_CHECKING:
    from ..api.wire import WireFacts

# (status, outcome code) as the caller is told them: the API adapter decides, the audit records it.
Outcome = tuple[int, str]
OutcomeFor = Callable[[DomainError | None], Outcome]


def _unmapped(error: DomainError | None) -> Outcome:
    return (200, "OK") if error is None else (400, error.code)


@dataclass
class RequestContext:
    api: str
    interaction: str
    request_id: str
    correlation_id: str | None = None
    trace_id: str | None = None
    caller: Caller = ANONYMOUS
    outcome_for: OutcomeFor = _unmapped
    nhs_number: str | None = None
    resource_id: str | None = None
    audited: bool = field(default=False)
    wire: WireFacts | None = None  # what the client sent, for the assurance report (api/wire.py)

    def audit_event(self, recorded_at: str, outcome: Outcome) -> AuditEvent:
        user, system = self.caller.user, self.caller.system
        return AuditEvent(
            recorded_at=recorded_at,
            api=self.api,
            interaction=self.interaction,
            status=outcome[0],
            outcome=outcome[1],
            request_id=self.request_id,
            correlation_id=self.correlation_id,
            trace_id=self.trace_id,
            system_asid=system.asid if system else None,
            system_ods=system.ods_code if system else None,
            user_id=user.user_id if user else None,
            role_profile_id=user.role_profile_id if user else None,
            role_code=user.role_code if user else None,
            org_code=user.org_code if user else (system.ods_code if system else None),
            nhs_number=self.nhs_number,
            resource_id=self.resource_id,
            wire=self.wire.encode(user is not None) if self.wire is not None else None,
        )
