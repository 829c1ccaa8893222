"""Typed forms of the FGM-IS DSTU2 messages: what the codec parses out of a request and needs for a response."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

from safeguarding.api.dstu2 import codes


class Interaction(Enum):
    """The three DSTU2 interactions. The value is the last segment of the path (``/fhir/fgm/<value>``)."""

    QUERY = "query"
    CREATE = "create"
    DELETE = "delete"

    @property
    def request_event(self) -> str:
        """``MessageHeader.event.code`` of the request (the old SOAPAction)."""
        return _EVENTS[self][0]

    @property
    def response_event(self) -> str:
        """``MessageHeader.event.code`` of the response."""
        return _EVENTS[self][1]

    @property
    def success_status(self) -> int:
        """HTTP status of a successful response, as in the guide's examples (create 201, others 200)."""
        return 201 if self is Interaction.CREATE else 200

    @classmethod
    def for_request_event(cls, event_code: str) -> Interaction | None:
        """The interaction a request event code belongs to, or None for anything else."""
        for interaction, (request_event, _) in _EVENTS.items():
            if request_event == event_code:
                return interaction
        return None


_EVENTS: dict[Interaction, tuple[str, str]] = {
    Interaction.QUERY: (codes.EVENT_QUERY_REQUEST, codes.EVENT_QUERY_RESPONSE),
    Interaction.CREATE: (codes.EVENT_CREATE_REQUEST, codes.EVENT_CREATE_RESPONSE),
    Interaction.DELETE: (codes.EVENT_DELETE_REQUEST, codes.EVENT_DELETE_RESPONSE),
}


@dataclass(frozen=True, slots=True)
class Practitioner:
    """The user named by ``MessageHeader.author``. Recorded for audit; not authenticated by the message."""

    sds_user_id: str | None
    sds_role_profile_id: str | None
    local_user_id: str | None
    name: str | None  # Practitioner.name, else MessageHeader.author.display


@dataclass(frozen=True, slots=True)
class Organization:
    """The requesting organisation (spine-organization-1-0), not the child's GP practice."""

    ods_code: str
    name: str | None


@dataclass(frozen=True, slots=True)
class RequestHeader:
    """What the response and the audit need from the request's MessageHeader."""

    message_id: str
    timestamp: datetime  # always timezone-aware (FHIR instant)
    event_code: str
    source_asid: str
    destination_asid: str
    author_reference: str  # "Practitioner/<id>" as sent


@dataclass(frozen=True, slots=True)
class QueryRequest:
    header: RequestHeader
    practitioner: Practitioner
    organization: Organization | None  # the guide makes it optional (MAY)
    nhs_number: str

    @property
    def interaction(self) -> Interaction:
        return Interaction.QUERY


@dataclass(frozen=True, slots=True)
class CreateRequest:
    header: RequestHeader
    practitioner: Practitioner
    organization: Organization | None
    nhs_number: str
    birth_date: date
    gp_ods_code: str
    assessment_date: date  # Flag.period.start

    @property
    def interaction(self) -> Interaction:
        return Interaction.CREATE


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    header: RequestHeader
    practitioner: Practitioner
    organization: Organization | None
    nhs_number: str
    delete_reason: str  # a key of codes.DELETE_REASONS

    @property
    def interaction(self) -> Interaction:
        return Interaction.DELETE


Request = QueryRequest | CreateRequest | DeleteRequest


@dataclass(frozen=True, slots=True)
class FoundFlag:
    """The indicator a query found, as the response Flag shows it."""

    flag_id: str
    nhs_number: str
    assessment_date: date
