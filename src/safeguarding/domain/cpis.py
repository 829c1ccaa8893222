"""CP-IS: child protection plans that local authorities share, and who looked at them.

A local authority (LA) holds at most one plan of each type for a child: a plan's key is (authority,
NHS number, plan type), so uploads are upserts and sending the same record twice changes nothing.
An unborn child's plan is held under the mother's NHS number. Withdrawing a plan never destroys it:
it stops being shared and keeps who changed it last.

A clinician's unscheduled access to a child who has an active plan is recorded; the last 25 of those
accesses (one per user per 24 hours) form the child's access history, and each recorded access is a
notification for the responsible authority (an "Access to Service Notification").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import Enum

from . import nhs_number as nhs
from .caller import Activity, User
from .errors import (
    DomainError,
    InvalidNhsNumber,
    NhsNumberNotVerified,
    NhsNumberSuperseded,
    NoActivePlan,
    PatientNotFound,
    PlanInvalid,
    PlanNotFound,
    PlanOfAnotherAuthority,
    SensitiveRecord,
)
from .patients import Patient, SecurityLabel

HISTORY_LIMIT = 25
REPEAT_WINDOW = timedelta(hours=24)


class PlanType(str, Enum):
    """The three CP-IS plan types, with their SNOMED codes (England-ChildProtectionPlan)."""

    CPP = "CPP"
    LAC = "LAC"
    UCP = "UCP"

    @property
    def snomed(self) -> str:
        return _SNOMED[self][0]

    @property
    def display(self) -> str:
        return _SNOMED[self][1]

    @classmethod
    def for_snomed(cls, code: str) -> PlanType | None:
        return next((kind for kind in cls if kind.snomed == code), None)


_SNOMED = {
    PlanType.CPP: ("342191000000101", "Subject to child protection plan"),
    PlanType.LAC: ("764841000000100", "Looked after child"),
    PlanType.UCP: ("818901000000100", "Unborn child subject to child protection plan"),
}


class PlanAction(str, Enum):
    """What an uploaded record asks for."""

    SET = "set"  # the plan is in place: start date, optional end date (mandatory for UCP)
    END = "end"  # the plan has ended: end date required, not after today
    WITHDRAW = "withdraw"  # the plan should never have been shared (HL7v3: the plan's delete date)


@dataclass(frozen=True)
class AuthorityContact:
    """How clinicians reach the responsible authority: its name and 1-2 phone numbers."""

    name: str
    office_phone: str | None = None  # office hours (FHIR telecom use ``work``)
    emergency_phone: str | None = None  # emergency duty team (FHIR telecom use ``mobile``)


@dataclass(frozen=True)
class PlanKey:
    authority_ods: str
    nhs_number: str
    plan_type: PlanType


@dataclass(frozen=True)
class Provenance:
    """When and by what a plan was last changed (the request id links it to its audit event)."""

    at: str
    by: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Plan:
    id: str
    key: PlanKey
    start: date
    end: date | None
    contact: AuthorityContact
    created_at: str
    changed: Provenance
    withdrawn_at: str | None = None
    version: int = 1

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def is_active(self, today: date) -> bool:
        """Shared while not withdrawn and with no end date, or an end date today or later."""
        return not self.withdrawn and (self.end is None or self.end >= today)


@dataclass(frozen=True)
class PlanRecord:
    """One plan as a local authority sends it (a FHIR CarePlan or a CSV row), already parsed.

    ``named_authorities`` are the ODS codes the record itself names as the authority, if any.
    """

    nhs_number: str
    plan_type: PlanType
    action: PlanAction
    start: date | None = None
    end: date | None = None
    contact: AuthorityContact | None = None
    named_authorities: frozenset[str] = frozenset()


class Change(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class Applied:
    change: Change
    plan: Plan


# Fixed texts for PlanInvalid (safe to show and to log: never built from input).
START_REQUIRED = "The plan start date is required"
START_IN_FUTURE = "The plan start date must not be in the future"
END_BEFORE_START = "The plan end date must not be before its start date"
UCP_END_REQUIRED = "An unborn child plan needs an end date"
END_REQUIRED = "An ended plan needs an end date"
END_AFTER_TODAY = "An ended plan's end date must not be after today"
ACTIVE_BUT_ENDED = "A plan in place must not have an end date before today"
CONTACT_REQUIRED = "The plan needs the authority's name and at least one phone number"


def check_subject(nhs_number: str, patient: Patient | None) -> None:
    """The demographic checks an uploaded record gets, in the order they are reported."""
    if not nhs.is_valid(nhs_number):
        raise InvalidNhsNumber()
    if patient is None:
        raise PatientNotFound()
    if patient.superseded_by:
        raise NhsNumberSuperseded()
    if not patient.verified:
        raise NhsNumberNotVerified()
    if patient.security is not SecurityLabel.UNRESTRICTED:
        raise SensitiveRecord()


def check_record(record: PlanRecord, uploader_ods: str, patient: Patient | None, today: date) -> None:
    """The rules for one uploaded record, except whether a plan to withdraw exists (the store knows).

    Checked in this order: whose plan it is, the subject's demographics, then dates and contact.
    """
    if record.named_authorities - {uploader_ods}:
        raise PlanOfAnotherAuthority()
    check_subject(record.nhs_number, patient)
    if record.action is PlanAction.WITHDRAW:
        return
    start, end = record.start, record.end
    if start is None:
        raise PlanInvalid(START_REQUIRED)
    if start > today:
        raise PlanInvalid(START_IN_FUTURE)
    if end is not None and end < start:
        raise PlanInvalid(END_BEFORE_START)
    if record.action is PlanAction.END:
        if end is None:
            raise PlanInvalid(END_REQUIRED)
        if end > today:
            raise PlanInvalid(END_AFTER_TODAY)
    else:
        if record.plan_type is PlanType.UCP and end is None:
            raise PlanInvalid(UCP_END_REQUIRED)
        if end is not None and end < today:
            raise PlanInvalid(ACTIVE_BUT_ENDED)
    contact = record.contact
    if contact is None or not contact.name or not (contact.office_phone or contact.emergency_phone):
        raise PlanInvalid(CONTACT_REQUIRED)


def apply(existing: Plan | None, record: PlanRecord, key: PlanKey, new_id: str, changed: Provenance) -> Applied:
    """The plan after a checked record is applied to what the authority held (upsert by key)."""
    if record.action is PlanAction.WITHDRAW:
        if existing is None:
            raise PlanNotFound()
        if existing.withdrawn:
            return Applied(Change.UNCHANGED, existing)
        withdrawn = replace(existing, withdrawn_at=changed.at, changed=changed, version=existing.version + 1)
        return Applied(Change.WITHDRAWN, withdrawn)
    if record.start is None or record.contact is None:  # check_record refuses these first
        raise PlanInvalid(START_REQUIRED if record.start is None else CONTACT_REQUIRED)
    if existing is None:
        plan = Plan(id=new_id, key=key, start=record.start, end=record.end, contact=record.contact,
                    created_at=changed.at, changed=changed)
        return Applied(Change.CREATED, plan)
    same = (existing.start, existing.end, existing.contact, existing.withdrawn) == (
        record.start, record.end, record.contact, False)
    if same:
        return Applied(Change.UNCHANGED, existing)
    # Re-sending a withdrawn plan shares it again: the authority's latest record is the truth.
    updated = replace(existing, start=record.start, end=record.end, contact=record.contact, withdrawn_at=None,
                      changed=changed, version=existing.version + 1)
    return Applied(Change.UPDATED, updated)


_TYPE_ORDER = {kind: rank for rank, kind in enumerate(PlanType)}


def active_plans(plans: list[Plan], today: date) -> list[Plan]:
    """The plans shared today, in a stable order: plan type (as ``PlanType`` lists them), then start date."""
    return sorted((p for p in plans if p.is_active(today)),
                  key=lambda p: (_TYPE_ORDER[p.key.plan_type], p.start, p.key.authority_ods))


def responsible_authorities(plans: list[Plan], today: date) -> list[str]:
    """The ODS codes of the authorities with an active plan for the child, each once."""
    return authorities_of(active_plans(plans, today))


def authorities_of(active: list[Plan]) -> list[str]:
    """The ODS codes of the authorities responsible for these (active) plans, each once, sorted."""
    return sorted({p.key.authority_ods for p in active})


def require_responsible(plans: list[Plan], today: date) -> list[str]:
    authorities = responsible_authorities(plans, today)
    if not authorities:
        raise NoActivePlan()
    return authorities


# Upload acknowledgement codes (HL7v3 CPVocab: CP-ISUploadFileResponse and CP-ISUploadRecordResponse).


class FileCode(str, Enum):
    FILE_ERROR = "CPF01"
    SUCCESS = "CPF02"
    PARTIAL = "CPF03"
    FAILED = "CPF04"
    PDS_UNAVAILABLE = "CPF05"
    CLIENT_UNSUPPORTED = "CPF06"

    @property
    def display(self) -> str:
        return _FILE_DISPLAYS[self]


_FILE_DISPLAYS = {
    FileCode.FILE_ERROR: "File Level Error",
    FileCode.SUCCESS: "Successful File Upload",
    FileCode.PARTIAL: "Partial File Upload",
    FileCode.FAILED: "Unsuccessful File Upload",
    FileCode.PDS_UNAVAILABLE: "PDS Error - PDS Unavailable",
    FileCode.CLIENT_UNSUPPORTED: "Spine ii rejected the request because this version of the CPIS Client is no "
                                 "longer supported",
}


class RecordCode(str, Enum):
    NO_MATCH = "CPR01"
    SENSITIVE = "CPR02"
    NOT_VERIFIED = "CPR03"
    FORMAT_INCORRECT = "CPR04"
    SUPERSEDED = "CPR05"
    SUCCESS = "CPR06"
    UNSUCCESSFUL = "CPR07"

    @property
    def display(self) -> str:
        return _RECORD_DISPLAYS[self]


_RECORD_DISPLAYS = {
    RecordCode.NO_MATCH: "PDS Error - No Match Found for NHS Number",
    RecordCode.SENSITIVE: "PDS Error - NHS Number Matched, but Sensitive Record",
    RecordCode.NOT_VERIFIED: "PDS Error - NHS Number not Verified",
    RecordCode.FORMAT_INCORRECT: "PDS Error - NHS Number Format Incorrect",
    RecordCode.SUPERSEDED: "PDS Error - NHS Number Verified, but Superseded",
    RecordCode.SUCCESS: "Successful Record Upload",
    RecordCode.UNSUCCESSFUL: "Unsucessful Record Upload",  # sic, as the vocabulary spells it
}

RECORD_CODES: dict[type[DomainError], RecordCode] = {
    InvalidNhsNumber: RecordCode.FORMAT_INCORRECT,
    PatientNotFound: RecordCode.NO_MATCH,
    NhsNumberNotVerified: RecordCode.NOT_VERIFIED,
    NhsNumberSuperseded: RecordCode.SUPERSEDED,
    SensitiveRecord: RecordCode.SENSITIVE,
    PlanInvalid: RecordCode.UNSUCCESSFUL,
    PlanNotFound: RecordCode.UNSUCCESSFUL,
    PlanOfAnotherAuthority: RecordCode.UNSUCCESSFUL,
}


def record_code(error: DomainError | None) -> RecordCode:
    """The acknowledgement code for one record: success, or why it was not applied."""
    if error is None:
        return RecordCode.SUCCESS
    return RECORD_CODES.get(type(error), RecordCode.UNSUCCESSFUL)


def file_code(applied: int, failed: int) -> FileCode:
    if failed == 0 and applied > 0:
        return FileCode.SUCCESS
    if applied == 0:
        return FileCode.FAILED
    return FileCode.PARTIAL


# Access history and notifications ------------------------------------------------------------------


@dataclass(frozen=True)
class Author:
    """Who accessed a record or raised an alert, as recorded with it (from the caller's token)."""

    user_id: str
    role_profile_id: str
    org_code: str
    role_code: str | None = None
    role_name: str | None = None
    org_name: str | None = None
    name: str | None = None

    @classmethod
    def of(cls, user: User) -> Author:
        return cls(user_id=user.user_id, role_profile_id=user.role_profile_id, org_code=user.org_code,
                   role_code=user.role_code, role_name=user.role_name, org_name=user.org_name, name=user.name)


@dataclass(frozen=True)
class Access:
    """One recorded unscheduled access. ``listed`` is false for a repeat by the same user within 24 h."""

    id: str
    nhs_number: str
    at: str
    author: Author
    listed: bool = True


@dataclass(frozen=True)
class Alert:
    """A missed-appointment alert raised by a clinician for a child on a plan."""

    id: str
    nhs_number: str
    at: str
    author: Author
    note: str | None = None


Event = Access | Alert


@dataclass(frozen=True)
class Notification:
    """An event queued for one authority; delivered until the authority acknowledges it."""

    authority_ods: str
    queued_at: str
    event: Event
    acknowledged_at: str | None = None

    @property
    def event_id(self) -> str:
        return self.event.id


def records_access(declared_unscheduled: bool | None, user: User) -> bool:
    """An access is recorded when it is unscheduled (the caller says so, or says nothing) and the caller
    holds B0107. A caller with only B0170 is always treated as scheduled (a silent read)."""
    return declared_unscheduled is not False and user.holds(Activity.CPIS_VIEW_UNSCHEDULED)


def is_listed(at: datetime, last_listed_by_same_user: datetime | None) -> bool:
    """Repeats by the same user within 24 hours are listed once: the first of them."""
    return last_listed_by_same_user is None or at - last_listed_by_same_user >= REPEAT_WINDOW
