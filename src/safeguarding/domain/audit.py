"""The audit event: one per request, allowed or refused."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AuditEvent:
    """What happened, to whom, by whom. Written with the change it describes.

    ``status`` and ``outcome`` are what the caller was told (HTTP status and the outcome code).
    """

    recorded_at: str
    api: str
    interaction: str
    status: int
    outcome: str
    request_id: str
    correlation_id: str | None = None
    trace_id: str | None = None
    system_asid: str | None = None
    system_ods: str | None = None
    user_id: str | None = None
    role_profile_id: str | None = None
    role_code: str | None = None
    org_code: str | None = None
    nhs_number: str | None = None
    resource_id: str | None = None

    def fields(self) -> dict[str, object]:
        return dict(self.__dict__)  # every field is a plain value: no deep copy needed (asdict's cost)


@dataclass(frozen=True)
class AuditRecord:
    """An audit event as stored: its place in the chain and the chain hash."""

    seq: int
    event: AuditEvent
    prev_hash: str
    hash: str
