"""Searching the SMSP's audit trail (SMSP-AUDIT-007): by date and time, user, NHS number, message id and
outcome. The SMSP's trail is its own database; a search reads it through, page by page."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from ..domain.audit import AuditRecord
from ..domain.clock import iso_instant


def instant(text: str, *, end_of_day: bool = False) -> str:
    """An ISO date or date-time as the audit writes instants (UTC). A bare date is the start of that day,
    or with ``end_of_day`` the start of the next (the ``--to`` bound is exclusive)."""
    if len(text) == 10:
        day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
        return iso_instant(datetime.combine(day, time(), tzinfo=timezone.utc))
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return iso_instant(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))


@dataclass(frozen=True)
class Criteria:
    since: str | None = None  # inclusive, an audit instant
    until: str | None = None  # exclusive
    user_id: str | None = None
    nhs_number: str | None = None
    outcome: str | None = None
    message_id: str | None = None  # the client's MessageHeader id or the national message id

    def matches(self, record: AuditRecord) -> bool:
        event = record.event
        return ((self.since is None or event.recorded_at >= self.since)
                and (self.until is None or event.recorded_at < self.until)
                and (self.user_id is None or event.user_id == self.user_id)
                and (self.nhs_number is None or event.nhs_number == self.nhs_number)
                and (self.outcome is None or event.outcome == self.outcome)
                and (self.message_id is None or self.message_id in (event.correlation_id, event.resource_id)))


def search(records: Iterable[AuditRecord], criteria: Criteria) -> Iterator[dict[str, Any]]:
    """The matching records, oldest first, as plain values (with their place in the chain)."""
    for record in records:
        if criteria.matches(record):
            yield {"seq": record.seq, **record.event.fields()}
