"""API errors and the one place that renders them as FHIR R4 OperationOutcomes.

An ``ErrorRow`` is one row of an API's error table, data only: HTTP status, issue severity and type, the
Spine error code with its display, and diagnostics. Diagnostics are fixed texts chosen here, never
built from request data, so they can be logged and audited safely.

A row is never raised: ``row.error()`` makes the ``ApiError`` to raise, a fresh exception every time. An
exception instance raised again and again keeps growing its ``__traceback__``, whose frames hold every
earlier request alive (tokens, query strings, bodies): ``tests/security/test_refusal_leak.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# DIGEST A5: the IG example's system; UK Core's equivalent is
# https://fhir.hl7.org.uk/CodeSystem/UKCore-SpineErrorOrWarningCode (configurable in settings).
DEFAULT_ERROR_SYSTEM = "https://fhir.nhs.uk/CodeSystem/England-SpineErrorOrWarningCode"

DISPLAYS = {
    "ACCESS_DENIED": "Access has been denied to process this request",
    "INVALID_SEARCH_DATA": "Invalid search data",
    "INVALID_VALUE": "Invalid value",
    "INVALID_RESOURCE": "Invalid resource",
    "MESSAGE_NOT_WELL_FORMED": "Message not well formed",
    "NOT_ACCEPTABLE": "Not acceptable",
    "PRECONDITION_FAILED": "Precondition failed",
    "RESOURCE_NOT_FOUND": "Resource not found",
    "SERVICE_UNAVAILABLE": "Service unavailable",
    "INTERNAL_SERVER_ERROR": "Unexpected internal server error",
    "METHOD_NOT_ALLOWED": "Method not allowed",
    "UNSUPPORTED_MEDIA_TYPE": "Unsupported media type",
    "UNSUPPORTED_VALUE": "Unsupported value",
    "VALIDATION_ERROR": "Validation error",
    "REQUEST_TOO_LARGE": "Request too large",
    "REQUEST_TIMEOUT": "Request timeout",
}


@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str


@dataclass(frozen=True)
class ErrorRow:
    """What the caller is told of one kind of refusal (the fields of ``ApiError``); ``error()`` is the fresh
    exception to raise for it."""

    status: int
    details_code: str
    diagnostics: str
    issue_type: str = "invalid"
    severity: str = "error"
    headers: tuple[tuple[str, str], ...] = ()
    expressions: tuple[str, ...] = ()
    system: str | None = None
    display: str | None = None
    also: tuple[Coding, ...] = ()

    def error(self, **changes: Any) -> ApiError:
        """A fresh exception for this row (``changes`` replace fields, e.g. diagnostics)."""
        return ApiError(**self.values() | changes, row=self)

    def values(self) -> dict[str, Any]:
        """The fields, as an ``ApiError`` (or a subclass) is built from them."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["headers"] = dict(self.headers)
        return values

    @property
    def outcome(self) -> tuple[int, str]:
        return self.status, self.details_code


@dataclass
class ApiError(Exception):
    """``system`` and ``display`` name the details code when it is not a Spine error code (e.g. a CP-IS
    record acknowledgement code); ``also`` adds further codings to the same issue (e.g. a file code)."""

    status: int
    details_code: str
    diagnostics: str
    issue_type: str = "invalid"
    severity: str = "error"
    headers: dict[str, str] = field(default_factory=dict)
    expressions: tuple[str, ...] = ()
    system: str | None = None
    display: str | None = None
    also: tuple[Coding, ...] = ()
    # The table row it was raised from (``ErrorRow.error()``): how another protocol finds its own row for it.
    row: ErrorRow | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        super().__init__(self.details_code)

    @property
    def outcome(self) -> tuple[int, str]:
        return self.status, self.details_code


# What the one renderer takes: a raised error, or a row used as data (e.g. a CP-IS entry's acknowledgement).
AnyError = ApiError | ErrorRow


def operation_outcome(error: AnyError, system: str = DEFAULT_ERROR_SYSTEM) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "severity": error.severity,
        "code": error.issue_type,
        "details": {
            "coding": [
                {
                    "system": error.system or system,
                    "code": error.details_code,
                    "display": error.display or DISPLAYS.get(error.details_code, error.details_code),
                },
                *({"system": c.system, "code": c.code, "display": c.display} for c in error.also),
            ]
        },
        "diagnostics": error.diagnostics,
    }
    if error.expressions:
        issue["expression"] = list(error.expressions)
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def bad_token(reason_is_missing: bool, sandbox_reason: str | None = None) -> ApiError:
    """``sandbox_reason``: the precise reason, told to the caller in the sandbox only (elsewhere only logged)."""
    challenge = 'Bearer realm="safeguarding"'
    if not reason_is_missing:
        challenge += ', error="invalid_token"'
    diagnostics = "Missing or invalid access token"
    if sandbox_reason:
        diagnostics += f" (sandbox only: {sandbox_reason})"
    return ApiError(401, "ACCESS_DENIED", diagnostics, issue_type="login", headers={"WWW-Authenticate": challenge})


# Rows shared by every R4 endpoint (raise ``ROW.error()``, never a shared instance).
ACCESS_DENIED = ErrorRow(403, "ACCESS_DENIED", "The sender or receiver's ASID is not authorised for this interaction",
                         issue_type="forbidden")
PRECONDITION_FAILED = ErrorRow(400, "PRECONDITION_FAILED", "Missing or invalid head parameter")
NOT_WELL_FORMED = ErrorRow(400, "MESSAGE_NOT_WELL_FORMED", "The request body is not well-formed JSON or XML",
                           issue_type="structure")
TOO_LARGE = ErrorRow(413, "REQUEST_TOO_LARGE", "The request body is larger than 1 MiB", issue_type="too-long")
# Slow or oversized clients (docs/security.md "Hostile input"): the connection is closed after these.
REQUEST_TIMEOUT = ErrorRow(408, "REQUEST_TIMEOUT", "The request was not received in time", issue_type="timeout",
                           headers=(("Connection", "close"),))
HEAD_TOO_LARGE = ErrorRow(431, "REQUEST_TOO_LARGE", "The request line and headers are larger than 64 KiB or "
                          "hold more than 100 fields", issue_type="too-long")
NOT_HTTP = ErrorRow(400, "MESSAGE_NOT_WELL_FORMED", "The request is not valid HTTP/1.1", issue_type="structure")
UNSUPPORTED_MEDIA = ErrorRow(415, "UNSUPPORTED_MEDIA_TYPE",
                             "Content-Type must be application/fhir+json or application/fhir+xml",
                             issue_type="not-supported")
NOT_ACCEPTABLE = ErrorRow(406, "NOT_ACCEPTABLE", "Accept must allow application/fhir+json or application/fhir+xml",
                          issue_type="not-supported")
NOT_FOUND = ErrorRow(404, "RESOURCE_NOT_FOUND", "Resource not found", issue_type="not-found")
METHOD_NOT_ALLOWED = ErrorRow(405, "METHOD_NOT_ALLOWED", "Method not allowed for this resource",
                              issue_type="not-supported")
SERVICE_UNAVAILABLE = ErrorRow(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable",
                               issue_type="transient")


# The last resort: its diagnostics carry the correlation id (internal_error).
INTERNAL_ERROR = ErrorRow(500, "INTERNAL_SERVER_ERROR", "An unexpected error occurred", issue_type="exception",
                          severity="fatal")


def internal_error(correlation_id: str) -> ApiError:
    return INTERNAL_ERROR.error(diagnostics=f"An unexpected error occurred. Correlation id: {correlation_id}")
