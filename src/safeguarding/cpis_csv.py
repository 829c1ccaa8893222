"""CP-IS plans from CSV, for bulk loads (``safeguarding load cpis FILE --authority ODS``).

The same records as the FHIR upload, one per row, applied through the same service and rules:
upserts keyed by (authority, NHS number, plan type), so loading a file twice leaves the same state.
Rows go in chunks, each chunk one audited transaction (api ``cpis-csv``).

Columns (a header row names them; order is free, unknown columns are refused):

    nhs_number       the child's NHS number (the mother's for an unborn child plan); spaces allowed
    plan_type        CPP, LAC or UCP (or the SNOMED code)
    status           active, completed (ended) or entered-in-error (withdrawn), as CarePlan.status
    start_date       YYYY-MM-DD
    end_date         YYYY-MM-DD or empty
    authority_name   the name clinicians see
    office_phone     office hours number (CareTeam telecom use work)
    emergency_phone  emergency duty number (CareTeam telecom use mobile)

Problems are reported by row number and code, never by the row's content.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .domain import cpis
from .domain import nhs_number as nhs
from .domain.caller import Caller, System, SystemKind
from .domain.cpis import AuthorityContact, Change, PlanAction, PlanRecord, PlanType, RecordCode
from .services.context import RequestContext
from .services.cpis import CpisService

API = "cpis-csv"
COLUMNS = ("nhs_number", "plan_type", "status", "start_date", "end_date", "authority_name", "office_phone",
           "emergency_phone")
REQUIRED = ("nhs_number", "plan_type", "status", "start_date")
CHUNK = 500
_ACTIONS = {"active": PlanAction.SET, "completed": PlanAction.END, "entered-in-error": PlanAction.WITHDRAW}
_PHONE = re.compile(r"^\+?[0-9]{6,20}$")

BAD_COLUMNS = "wrong number of columns"
BAD_PLAN_TYPE = "plan_type must be CPP, LAC or UCP (or its SNOMED code)"
BAD_STATUS = "status must be active, completed or entered-in-error"
BAD_DATE = "start_date and end_date must be dates (YYYY-MM-DD)"
BAD_PHONE = "phone numbers must be digits with an optional leading +"


class CsvFileError(ValueError):
    """The file as a whole cannot be used (CPF01). The message never quotes the file's content."""


@dataclass(frozen=True)
class Row:
    number: int  # the line number of the row in the file (the header is line 1)
    record: PlanRecord | None = None
    problem: str | None = None


@dataclass
class Summary:
    authority: str
    records: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        applied = self.records - len(self.failures)
        code = cpis.file_code(applied, len(self.failures))
        return {"authority": self.authority, "records": self.records, "created": self.created,
                "updated": self.updated, "unchanged": self.unchanged, "withdrawn": self.withdrawn,
                "failed": len(self.failures), "file_code": code.value, "file_display": code.display,
                "failures": self.failures}


def read_rows(text: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise CsvFileError("the file is empty") from None
    except csv.Error:
        raise CsvFileError("the file is not valid CSV") from None
    unknown = sorted(set(header) - set(COLUMNS))
    missing = [name for name in REQUIRED if name not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise CsvFileError(f"the header must name the columns {', '.join(COLUMNS)} (each once; "
                           f"{', '.join(REQUIRED)} required); unknown: {unknown}, missing: {missing}")
    rows = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue  # blank lines are not records
            number = reader.line_num
            if len(values) != len(header):
                rows.append(Row(number, problem=BAD_COLUMNS))
                continue
            rows.append(_row(number, dict(zip(header, (v.strip() for v in values), strict=True))))
    except csv.Error:
        raise CsvFileError("the file is not valid CSV") from None
    if not rows:
        raise CsvFileError("the file has no records")
    return rows


def _row(number: int, values: dict[str, str]) -> Row:
    kind_text = values["plan_type"].upper()
    kind = PlanType.__members__.get(kind_text) or PlanType.for_snomed(kind_text)
    if kind is None:
        return Row(number, problem=BAD_PLAN_TYPE)
    action = _ACTIONS.get(values["status"].lower())
    if action is None:
        return Row(number, problem=BAD_STATUS)
    try:
        start = date.fromisoformat(values["start_date"]) if values["start_date"] else None
        end = date.fromisoformat(values["end_date"]) if values.get("end_date") else None
    except ValueError:
        return Row(number, problem=BAD_DATE)
    phones = [values.get(name, "").replace(" ", "") for name in ("office_phone", "emergency_phone")]
    if any(p and not _PHONE.match(p) for p in phones):
        return Row(number, problem=BAD_PHONE)
    name = values.get("authority_name", "")
    contact = AuthorityContact(name, phones[0] or None, phones[1] or None) if name or any(phones) else None
    record = PlanRecord(nhs_number=nhs.normalise(values["nhs_number"]), plan_type=kind, action=action, start=start,
                        end=end, contact=contact)
    return Row(number, record=record)


def load(service: CpisService, authority: System, rows: list[Row], progress: Callable[[int], None] = lambda n: None,
         chunk: int = CHUNK) -> Summary:
    """Apply the rows as ``authority``'s uploads, ``chunk`` rows per audited transaction."""
    summary = Summary(authority=authority.ods_code, records=len(rows))
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        for row in part:
            if row.problem is not None:
                summary.failures.append(_failure(row.number, RecordCode.UNSUCCESSFUL, row.problem))
        loaded = [row for row in part if row.record is not None]
        ctx = RequestContext(api=API, interaction="upload", request_id=str(uuid.uuid4()),
                             caller=Caller(system=authority))
        result = service.upload(ctx, authority, [row.record for row in loaded if row.record is not None],
                                refused=len(part) - len(loaded))
        for row, outcome in zip(loaded, result.results, strict=True):
            if outcome.applied is None:
                summary.failures.append(_failure(row.number, outcome.code, str(outcome.error)))
                continue
            change = outcome.applied.change
            summary.created += change is Change.CREATED
            summary.updated += change is Change.UPDATED
            summary.unchanged += change is Change.UNCHANGED
            summary.withdrawn += change is Change.WITHDRAWN
        progress(len(part))
    summary.failures.sort(key=lambda f: int(f["row"]))
    return summary


def _failure(row: int, code: RecordCode, reason: str) -> dict[str, Any]:
    return {"row": row, "code": code.value, "display": code.display, "reason": reason}


def authority_system(systems: Iterable[System], ods: str) -> System | None:
    """The registered local-authority system with this ODS code, if exactly one."""
    found = [s for s in systems if s.ods_code.upper() == ods.upper() and s.kind is SystemKind.LOCAL_AUTHORITY]
    return found[0] if len(found) == 1 else None
