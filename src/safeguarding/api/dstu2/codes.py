"""The FGM-IS DSTU2 vocabulary, defined once: response codes, event codes, delete reasons and URIs.

Sources: DIGEST §1.2-§1.10 and the NHS ValueSets in ``nhs/fgm-dstu2/ValueSets``. We emit the
``http://fhir.nhs.net/`` form of every NHS URI (as the examples and fixed profile values do) and
accept the other published prefixes on input (DIGEST A3) through :func:`canonical`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ...domain import nhs_number

FHIR_NS: Final = "http://hl7.org/fhir"
XHTML_NS: Final = "http://www.w3.org/1999/xhtml"

# ---------------------------------------------------------------------------------------------
# Canonical URIs
# ---------------------------------------------------------------------------------------------

_NHS_BASE: Final = "http://fhir.nhs.net/"
# Other bases the NHS material uses for the same artefacts: the guide's page links
# (fhir.nhs.uk), https variants and the older drafts (fhir-test.nhs.uk).
_NHS_ALIASES: Final = (
    "https://fhir.nhs.net/",
    "http://fhir.nhs.uk/",
    "https://fhir.nhs.uk/",
    "http://fhir-test.nhs.uk/",
    "https://fhir-test.nhs.uk/",
)


def canonical(uri: str) -> str:
    """Rewrite a known NHS base (any case, either scheme) to ``http://fhir.nhs.net/``; other URIs unchanged.

    Only the scheme and host are case-folded: paths such as ``Id/nhs-number`` stay case-sensitive.
    """
    for base in (_NHS_BASE, *_NHS_ALIASES):
        if uri[: len(base)].lower() == base:
            return _NHS_BASE + uri[len(base) :]
    return uri


def same_canonical(a: str, b: str) -> bool:
    """True when two URIs name the same NHS artefact once their base is normalised."""
    return canonical(a) == canonical(b)


def _nhs(path: str) -> str:
    return _NHS_BASE + path


# Identifier systems (DIGEST §1.10).
NHS_NUMBER_SYSTEM: Final = nhs_number.DSTU2_SYSTEM  # what the profiles fix; read by nhs_number.is_system
SDS_USER_ID_SYSTEM: Final = _nhs("Id/sds-user-id")
SDS_ROLE_PROFILE_ID_SYSTEM: Final = _nhs("Id/sds-role-profile-id")
LOCAL_IDENTIFIER_SYSTEM: Final = _nhs("Id/local-identifier")
ODS_ORGANIZATION_CODE_SYSTEM: Final = _nhs("Id/ods-organization-code")
ODS_SITE_CODE_SYSTEM: Final = _nhs("Id/ods-site-code")

# Code systems (the NHS DSTU2 value sets double as their code systems).
MESSAGE_EVENT_SYSTEM: Final = _nhs("ValueSet/message-event-2-0")
SPINE_RESPONSE_CODE_SYSTEM: Final = _nhs("ValueSet/spine-response-code-2-0")
RISK_INDICATOR_SYSTEM: Final = _nhs("ValueSet/risk-indicator-type-1-0")
DELETE_REASON_SYSTEM: Final = _nhs("ValueSet/fgm-delete-reason-codes-1-0")

RISK_INDICATOR_FGM: Final = "FGM"

# Profiles we put in meta.profile of the responses we emit.
PROFILE_MESSAGE_BUNDLE: Final = _nhs("StructureDefinition/spine-message-bundle-1-0")
PROFILE_RESPONSE_HEADER: Final = _nhs("StructureDefinition/spine-response-messageheader-2-0")
PROFILE_RIS_FLAG: Final = _nhs("StructureDefinition/spine-ris-flag-1-0")
PROFILE_RIS_PATIENT: Final = _nhs("StructureDefinition/spine-ris-patient-1-0")
PROFILE_OPERATION_OUTCOME: Final = _nhs("StructureDefinition/spine-operationoutcome-1-0")

# MessageHeader.source/destination.endpoint carry ASIDs as URNs.
ASID_ENDPOINT_PREFIX: Final = "urn:nhs:addressing:asid:"


def asid_endpoint(asid: str) -> str:
    """The endpoint URN for an ASID (``urn:nhs:addressing:asid:<ASID>``)."""
    return ASID_ENDPOINT_PREFIX + asid


# ---------------------------------------------------------------------------------------------
# Event codes (system MESSAGE_EVENT_SYSTEM; DIGEST §1.2). The request code is the old SOAPAction.
# ---------------------------------------------------------------------------------------------

_SYNC: Final = "urn:nhs:names:services:clinicals-sync:"
EVENT_QUERY_REQUEST: Final = _SYNC + "FGMQuery_2_0"
EVENT_QUERY_RESPONSE: Final = _SYNC + "FGMQueryResponse_2_0"
EVENT_CREATE_REQUEST: Final = _SYNC + "FGMCreate_1_0"
EVENT_CREATE_RESPONSE: Final = _SYNC + "FGMCreateResponse_1_0"
EVENT_DELETE_REQUEST: Final = _SYNC + "FGMDelete_1_0"
EVENT_DELETE_RESPONSE: Final = _SYNC + "FGMDeleteResponse_1_0"

# ---------------------------------------------------------------------------------------------
# Delete reasons (fgm-delete-reason-codes-1-0; DIGEST §1.4)
# ---------------------------------------------------------------------------------------------

DELETE_REASON_ADDED_IN_ERROR: Final = "0"
DELETE_REASON_NO_LONGER_AT_RISK: Final = "1"
DELETE_REASON_HAD_FGM: Final = "2"

DELETE_REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        DELETE_REASON_ADDED_IN_ERROR: "The at-risk indicator was added inadvertently or incorrectly",
        DELETE_REASON_NO_LONGER_AT_RISK: "The patient is no longer considered to be potentially at risk of FGM",
        DELETE_REASON_HAD_FGM: "The patient has had FGM",
    }
)

# ---------------------------------------------------------------------------------------------
# spine-response-code-2-0 (DIGEST §1.7)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpineCode:
    """One row of the DSTU2 error table: the OperationOutcome coding and the HTTP status that go with it."""

    code: str
    display: str
    http_status: int
    severity: str  # DSTU2 issue-severity: fatal | error | warning | information
    issue_type: str  # DSTU2 issue-type

    @property
    def response_code(self) -> str:
        """``MessageHeader.response.code`` for this outcome (DIGEST A1).

        "No record" (404) is a successful query with nothing to return, so it stays ``ok``; other
        client errors are ``fatal-error`` (do not retry unchanged); server errors are
        ``transient-error`` (retrying later may work).
        """
        if self.http_status < 300 or self.http_status == 404:
            return "ok"
        if self.http_status < 500:
            return "fatal-error"
        return "transient-error"


# Displays follow the spine-response-code-2-0 ValueSet, which is what a terminology check compares
# against; the guide tables differ only in capitalisation ("No Record Found").
NO_RECORD_FOUND: Final = SpineCode("NO_RECORD_FOUND", "No record found", 404, "error", "not-found")
INVALID_NHS_NUMBER: Final = SpineCode("INVALID_NHS_NUMBER", "Invalid NHS number", 400, "error", "invalid")
PATIENT_OVER_18: Final = SpineCode("PATIENT_OVER_18", "Patient is over 18", 400, "error", "invalid")
INVALID_PARAMETER: Final = SpineCode("INVALID_PARAMETER", "Invalid parameter", 400, "error", "invalid")
FLAG_ALREADY_SET: Final = SpineCode(
    "FLAG_ALREADY_SET", "Flag value was already set", 422, "warning", "informational"
)
MESSAGE_NOT_WELL_FORMED: Final = SpineCode(
    "MESSAGE_NOT_WELL_FORMED", "Message not well formed", 400, "error", "structure"
)
ASID_CHECK_FAILED: Final = SpineCode(
    "ASID_CHECK_FAILED",
    "The sender or receiver's ASID is not authorised for this interaction",
    403,
    "error",
    "forbidden",
)
INPUT_MESSAGE_VALIDATION_ERROR: Final = SpineCode(
    "INPUT_MESSAGE_VALIDATION_ERROR", "Input message validation error", 400, "error", "structure"
)
RESPONSE_MESSAGE_VALIDATION_ERROR: Final = SpineCode(
    "RESPONSE_MESSAGE_VALIDATION_ERROR", "Response message validation error", 400, "error", "structure"
)
# The guide's issue type "Information" is not a DSTU2 issue-type code; "informational" is (DIGEST §1.7).
DATA_RETURNED_FROM_LOCAL_STORE_SPINE_UNAVAILABLE: Final = SpineCode(
    "DATA_RETURNED_FROM_LOCAL_STORE_SPINE_UNAVAILABLE",
    "Data returned from local store, Spine unavailable",
    203,
    "warning",
    "informational",
)
COULD_NOT_CONNECT_TO_SPINE: Final = SpineCode(
    "COULD_NOT_CONNECT_TO_SPINE", "Could not connect to Spine", 500, "fatal", "no-store"
)
AUTHOR_CREDENTIALS_ERROR: Final = SpineCode(
    "AUTHOR_CREDENTIALS_ERROR", "Author credentials error", 401, "fatal", "forbidden"
)
# The guide's "Internal server error" is not a DSTU2 issue-type code; "exception" is (DIGEST §1.7).
GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE: Final = SpineCode(
    "GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE",
    "Generic Spine Mini Service Provider software failure",
    500,
    "fatal",
    "exception",
)

SPINE_CODES: Final[Mapping[str, SpineCode]] = MappingProxyType(
    {
        c.code: c
        for c in (
            NO_RECORD_FOUND,
            INVALID_NHS_NUMBER,
            PATIENT_OVER_18,
            INVALID_PARAMETER,
            FLAG_ALREADY_SET,
            MESSAGE_NOT_WELL_FORMED,
            ASID_CHECK_FAILED,
            INPUT_MESSAGE_VALIDATION_ERROR,
            RESPONSE_MESSAGE_VALIDATION_ERROR,
            DATA_RETURNED_FROM_LOCAL_STORE_SPINE_UNAVAILABLE,
            COULD_NOT_CONNECT_TO_SPINE,
            AUTHOR_CREDENTIALS_ERROR,
            GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE,
        )
    }
)
"""Every spine-response-code-2-0 row by its code."""
