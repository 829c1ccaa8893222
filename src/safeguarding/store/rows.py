"""The statements on every request's path, as fixed SQL, and the mapping between rows and domain objects."""

from __future__ import annotations

import re
from datetime import date
from enum import Enum
from typing import Any, TypeVar

import orjson

from ..domain.audit import AuditEvent, AuditRecord
from ..domain.cpis import (
    Access,
    Alert,
    Author,
    AuthorityContact,
    Plan,
    PlanKey,
    PlanType,
    Provenance,
)
from ..domain.fgm import Actor, Indicator, IndicatorStatus, Removal, RemovalReason
from ..domain.patients import Gender, Patient, SecurityLabel
from ..per_object import PerObject


def _flat_json(record: Actor | Author) -> str:
    """A flat record of plain values as JSON, its unset fields left out (``__dict__``: no deep copy, as
    ``asdict`` makes, for fields that hold no objects)."""
    return orjson.dumps({k: v for k, v in record.__dict__.items() if v is not None}).decode()


# ``_flat_json(author)``, written once for each Author object (the service records one a user).
_author_json: PerObject[Author, str] = PerObject(_flat_json)


def _actor(raw: str | None) -> Actor:
    return Actor(**orjson.loads(raw)) if raw else Actor()


def _plan_values(plan: Plan) -> dict[str, Any]:
    return {
        "start_date": plan.start,
        "end_date": plan.end,
        "authority_name": plan.contact.name,
        "office_phone": plan.contact.office_phone,
        "emergency_phone": plan.contact.emergency_phone,
        "withdrawn_at": plan.withdrawn_at,
        "version": plan.version,
        "changed_at": plan.changed.at,
        "changed_by": plan.changed.by,
        "request_id": plan.changed.request_id,
    }


def _access(row: Any) -> Access:
    return Access(id=row.id, nhs_number=row.nhs_number, at=row.recorded_at, author=Author(**orjson.loads(row.author)),
                  listed=row.listed)


def _alert(row: Any) -> Alert:
    return Alert(id=row.id, nhs_number=row.nhs_number, at=row.recorded_at, author=Author(**orjson.loads(row.author)),
                 note=row.note)


_ACCESS_KIND, _ALERT_KIND = "access", "missed-appointment"


def _audit_record(row: tuple[Any, ...]) -> AuditRecord:
    """A row of ``_AUDIT_PAGE`` (seq, prev_hash, hash, then the event's fields in order)."""
    return AuditRecord(seq=row[0], event=AuditEvent(*row[3:]), prev_hash=row[1], hash=row[2])


class _Sql:
    """A statement on every request's path, as fixed SQL run straight on the driver's connection.

    Building and compiling SQLAlchemy expressions was most of a request's CPU, and even a prebuilt
    statement costs tens of microseconds in SQLAlchemy's execution layer (docs/performance.md). Written
    with ``:name`` parameters (sqlite3's style); PostgreSQL's ``%(name)s`` form is derived once.
    """

    def __init__(self, sqlite: str, postgresql_suffix: str = "", *, positional: bool = False) -> None:
        # ``positional``: bound from a tuple in the order the names appear (cheaper for wide rows).
        self.sqlite = re.sub(r":\w+", "?", sqlite) if positional else sqlite
        self.postgresql = re.sub(r":(\w+)", "%s" if positional else r"%(\1)s", sqlite) + postgresql_suffix

    def text(self, dialect: str) -> str:
        return self.postgresql if dialect == "postgresql" else self.sqlite


class _Gathered:
    """A read of one key's rows, made for many keys at once (PostgreSQL only): ``statement`` takes each part of the
    keys as an array (``params``, in the key's order), and each row's ``key`` columns say whose it is
    (``StatementSender._gathered``)."""

    def __init__(self, statement: _Sql, params: tuple[str, ...], key: tuple[int, ...]) -> None:
        self.postgresql, self.params, self.key = statement.postgresql, params, key


# The columns each row converter below reads, in its order: the fixed SQL and SQLAlchemy selects alike.
_PATIENT_FIELDS = ("nhs_number", "verified", "birth_date", "gender", "security", "gp_ods_code", "deceased",
                   "superseded_by")
_INDICATOR_FIELDS = ("id", "nhs_number", "assessment_date", "status", "version", "created_at", "created_by",
                     "removed_at", "removed_by", "removal_reason")
_PLAN_FIELDS = ("id", "authority_ods", "nhs_number", "plan_type", "start_date", "end_date", "authority_name",
                "office_phone", "emergency_phone", "withdrawn_at", "version", "created_at", "changed_at",
                "changed_by", "request_id")
_PATIENT_COLUMNS, _INDICATOR_COLUMNS, _PLAN_COLUMNS = (
    ", ".join(fields) for fields in (_PATIENT_FIELDS, _INDICATOR_FIELDS, _PLAN_FIELDS))
# Fixed text from the constant column lists above (S608: nothing of a request's is formatted in).
_PATIENT_BY_NUMBER = _Sql(f"SELECT {_PATIENT_COLUMNS} FROM patients WHERE nhs_number = :nhs_number")  # noqa: S608
_ACTIVE_INDICATOR = _Sql(f"SELECT {_INDICATOR_COLUMNS} FROM fgm_indicators "  # noqa: S608
                         "WHERE nhs_number = :nhs_number AND status = 'active'")
_JOINED_COLUMNS = ", ".join([*("p." + c for c in _PATIENT_FIELDS), *("i." + c for c in _INDICATOR_FIELDS)])
_CHILD_AND_ACTIVE_INDICATOR = (f"SELECT {_JOINED_COLUMNS} FROM patients p LEFT JOIN fgm_indicators i "  # noqa: S608
                               "ON i.nhs_number = p.nhs_number AND i.status = 'active' WHERE p.nhs_number ")
_PATIENT_AND_ACTIVE_INDICATOR = _Sql(_CHILD_AND_ACTIVE_INDICATOR + "= :nhs_number")
# A batch's searches: every child's row in one statement (a group-commit batch's reads ahead).
_PATIENTS_AND_ACTIVE_INDICATORS = _Gathered(_Sql(_CHILD_AND_ACTIVE_INDICATOR + "= ANY(:nhs_numbers)"),
                                            ("nhs_numbers",), (0,))
_INDICATOR_BY_ID = _Sql(f"SELECT {_INDICATOR_COLUMNS} FROM fgm_indicators WHERE id = :id")  # noqa: S608
_LOCK_AUDIT_HEAD = _Sql("SELECT seq, hash FROM audit_head WHERE id = 1", " FOR UPDATE")
_AUDIT_COLUMNS = ("seq", "prev_hash", "hash", *AuditEvent.__dataclass_fields__)
_INSERT_AUDIT_EVENT = _Sql(f"INSERT INTO audit_events ({', '.join(_AUDIT_COLUMNS)}) "  # noqa: S608
                           f"VALUES ({', '.join(':' + c for c in _AUDIT_COLUMNS)})", positional=True)
_INSERT_INDICATOR = _Sql("INSERT INTO fgm_indicators (id, nhs_number, assessment_date, status, version, created_at, "
                         "created_by) VALUES (:id, :nhs_number, :assessment_date, :status, :version, :created_at, "
                         ":created_by)")
_SAVE_REMOVAL = _Sql("UPDATE fgm_indicators SET status = :status, version = :version, removed_at = :removed_at, "
                     "removed_by = :removed_by, removal_reason = :removal_reason "
                     "WHERE id = :id AND status = 'active' AND version = :previous")
_SAVEPOINT = _Sql("SAVEPOINT sg_savepoint")  # nests: ROLLBACK TO and RELEASE take the innermost of the name
_ROLLBACK_TO_SAVEPOINT = _Sql("ROLLBACK TO SAVEPOINT sg_savepoint")
_RELEASE_SAVEPOINT = _Sql("RELEASE SAVEPOINT sg_savepoint")
_PLANS_OF_CHILD = f"SELECT {_PLAN_COLUMNS} FROM cpis_plans WHERE nhs_number = :nhs_number"  # noqa: S608
_PLANS_FOR = _Sql(f"{_PLANS_OF_CHILD} ORDER BY id")
# Locked: PostgreSQL locks the rows in id order. SQLite has no row locks, and its ORDER BY builds a sorter (a
# temporary b-tree) even for a child's one row, which cost ~20% of the read: there the rows come in index order
# and ``_plan_rows_by_id`` puts them in id order (SQLite's BINARY collation of text is code-point order).
_PLANS_FOR_LOCKED = _Sql(_PLANS_OF_CHILD, " ORDER BY id FOR UPDATE")  # (the suffix: PostgreSQL's text only)
_LAST_LISTED_ACCESS = _Sql("SELECT MAX(recorded_at) FROM cpis_accesses "
                           "WHERE nhs_number = :nhs_number AND user_id = :user_id AND listed")
# A batch's CP-IS searches: every child's plans, locked in one order, and every (child, user)'s last listed access,
# in one statement each (a group-commit batch's reads ahead).
_PLANS_FOR_ALL_LOCKED = _Gathered(_Sql(f"SELECT {_PLAN_COLUMNS} FROM cpis_plans "  # noqa: S608
                                       "WHERE nhs_number = ANY(:nhs_numbers) ORDER BY nhs_number, id FOR UPDATE"),
                                  ("nhs_numbers",), (_PLAN_FIELDS.index("nhs_number"),))
_LAST_LISTED_ACCESSES = _Gathered(_Sql(
    "SELECT k.nhs_number, k.user_id, (SELECT MAX(a.recorded_at) FROM cpis_accesses a "
    "WHERE a.nhs_number = k.nhs_number AND a.user_id = k.user_id AND a.listed) "
    "FROM unnest(CAST(:nhs_numbers AS text[]), CAST(:user_ids AS text[])) AS k(nhs_number, user_id)"),
    ("nhs_numbers", "user_ids"), (0, 1))
_RECORD_ACCESS = _Sql("INSERT INTO cpis_accesses (id, nhs_number, recorded_at, user_id, author, listed) "
                      "VALUES (:id, :nhs_number, :recorded_at, :user_id, :author, :listed)")
_QUEUE_NOTIFICATION = _Sql("INSERT INTO cpis_notifications (authority_ods, event_id, kind, queued_at, acknowledged_at) "
                           "VALUES (:authority_ods, :event_id, :kind, :queued_at, :acknowledged_at)")
# Rows only ever appended, by statements that read nothing: a queue's run of them may be sent grouped by statement
# (``StatementSender._send``).
_APPENDED = frozenset(statement.postgresql for statement in (_INSERT_AUDIT_EVENT, _RECORD_ACCESS, _QUEUE_NOTIFICATION))
_AUDIT_PAGE = _Sql(f"SELECT {', '.join(_AUDIT_COLUMNS)} FROM audit_events "  # noqa: S608
                   "WHERE seq > :after AND seq <= :up_to ORDER BY seq LIMIT :limit")
_MOVE_AUDIT_HEAD = _Sql("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1")


def _columns(table: Any, fields: tuple[str, ...]) -> list[Any]:
    return [table.c[name] for name in fields]


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


# The members of the enums a row holds, by stored value: a dict look-up where ``Gender(value)`` costs two Python
# calls (the search maps three a request, a CP-IS search one a plan). A value not found still goes through the
# enum, which refuses it as before (``_GENDERS.get(value) or Gender(value)``).
_E = TypeVar("_E", bound=Enum)


def _by_value(kind: type[_E]) -> dict[Any, _E]:
    return {member.value: member for member in kind}


_GENDERS, _SECURITY_LABELS = _by_value(Gender), _by_value(SecurityLabel)
_INDICATOR_STATUSES, _PLAN_TYPES = _by_value(IndicatorStatus), _by_value(PlanType)


def _patient_row(row: tuple[Any, ...]) -> Patient:
    number, verified, birth, gender, security, gp, deceased, superseded = row
    return Patient(nhs_number=number, verified=bool(verified), birth_date=_date(birth),
                   gender=(_GENDERS.get(gender) or Gender(gender)) if gender else None,
                   security=_SECURITY_LABELS.get(security) or SecurityLabel(security),
                   gp_ods_code=gp, deceased=bool(deceased), superseded_by=superseded)


def _indicator_row(row: tuple[Any, ...]) -> Indicator:
    ident, number, assessed, status, version, created_at, created_by, removed_at, removed_by, reason = row
    removal = Removal(removed_at, _actor(removed_by), RemovalReason(reason)) if removed_at is not None else None
    return Indicator(id=ident, nhs_number=number, assessment_date=_date(assessed) or date.min,
                     status=_INDICATOR_STATUSES.get(status) or IndicatorStatus(status),
                     created_at=created_at, created_by=_actor(created_by), removal=removal, version=version)


def _by_id(row: tuple[Any, ...]) -> Any:
    return row[0]


def _plan_rows_by_id(rows: list[tuple[Any, ...]], sorted_already: bool) -> list[Plan]:
    """The plans of ``_PLANS_FOR_LOCKED``'s rows, in id order (as its PostgreSQL text's ORDER BY gives them)."""
    if not sorted_already and len(rows) > 1:
        rows.sort(key=_by_id)
    return [_plan_row(row) for row in rows]


def _plan_row(row: tuple[Any, ...]) -> Plan:
    (ident, authority, number, plan_type, start, end, name, office, emergency, withdrawn_at, version, created_at,
     changed_at, changed_by, request_id) = row
    kind = _PLAN_TYPES.get(plan_type) or PlanType(plan_type)
    # Plan's fields by position (id, key, start, end, contact, created_at, changed, withdrawn_at, version): a row
    # of every plan read, where nine keywords cost a third more.
    return Plan(ident, PlanKey(authority, number, kind), _date(start) or date.min, _date(end),
                AuthorityContact(name, office, emergency), created_at, Provenance(changed_at, changed_by, request_id),
                withdrawn_at, version)
