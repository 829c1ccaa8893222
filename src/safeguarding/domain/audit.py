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
    # What the client sent on the wire that the assurance report needs (compact JSON: which trace-id
    # headers, SOAPAction, IsUnscheduledAccessEvent, the token's client id, a sandbox scenario). Never
    # patient data. Added later: a record without it is hashed exactly as before (``fields``).
    wire: str | None = None

    def fields(self) -> dict[str, object]:
        """The hashed fields (every field is a plain value: no deep copy needed, asdict's cost)."""
        fields = dict(self.__dict__)
        if fields["wire"] is None:
            del fields["wire"]  # records written before the field existed keep their hashes
        return fields

    def values(self) -> tuple[object, ...]:
        """Every field's value, in declaration order (the audit table's columns)."""
        return tuple(self.__dict__.values())


@dataclass(frozen=True)
class AuditRecord:
    """An audit event as stored: its place in the chain and the chain hash."""

    seq: int
    event: AuditEvent
    prev_hash: str
    hash: str
