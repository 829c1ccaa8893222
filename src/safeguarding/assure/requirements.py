"""The integration requirements the assurance report checks, each with the NHS document it comes from.

Texts are quoted from the documents (shortened where marked with an ellipsis). Where the NHS documents
have no numbered requirement for a behaviour a client must show on the wire (the trace id header,
back-off after 503), the source is the guide page or the HTTP standard that says it, and the id is ours
(``SG-...``).
"""

from __future__ import annotations

from dataclasses import dataclass

FGM_REPO = "https://github.com/nhsconnect/fgm-risk-indication-service"


@dataclass(frozen=True)
class Source:
    document: str
    section: str
    link: str | None = None


@dataclass(frozen=True)
class Requirement:
    id: str
    text: str
    source: Source
    apis: tuple[str, ...]  # the APIs it applies to (fgm-r4, fgm-dstu2, cpis-r4)


LSIR = "FGM-IS Local System Integration Requirements Specification v2.2 (DCB2112, 18/02/2020)"
SMSP_FGM_CLIENT = "Interoperability Framework Spine Mini Service FGM IS Client Requirements v2.0.1"
SMSP_COMMON_CLIENT = "Interoperability Framework Spine Mini Service Common Client Requirements v1.0"
FGM_R4_GUIDE = "FGM-IS FHIR R4 implementation guide"
CPIS_R4_GUIDE = "CP-IS FHIR R4 implementation guide"
FGM_DSTU2_GUIDE = "FGM-IS DSTU2 messaging guide (nhsconnect/fgm-risk-indication-service)"
FGM = ("fgm-r4", "fgm-dstu2")
ALL = ("fgm-r4", "fgm-dstu2", "cpis-r4")
_LSIR_LINK = f"{FGM_REPO}/tree/master/images/fgm"

TRACE_IDS = Requirement(
    "SG-TRACE-01",
    "TraceID: [yourRef]. It is recommended that developers provide a unique reference number or identifier for "
    "the TraceID header for tracing purposes. UUID recommended. (Checked: TraceID, X-Request-ID or "
    "X-Correlation-ID on every call.)",
    Source(f"{FGM_R4_GUIDE}; {CPIS_R4_GUIDE}", "Build > Headers"), ALL)
VERIFIED = Requirement(
    "FGMISQ003", "The FGM IS Query Interaction MUST contain a verified NHS number.",
    Source(LSIR, "5.2 NHS Applicable Systems, FGM IS Query", _LSIR_LINK), FGM)
UNDER_18 = Requirement(
    "FGMISQ004", "The FGM IS Query Interaction MUST contain an NHS number pertaining to a person under age 18.",
    Source(LSIR, "5.2 NHS Applicable Systems, FGM IS Query", _LSIR_LINK), FGM)
NO_RECORD = Requirement(
    "FGMISQR005", "If the FGM IS response message indicates that no family history exists for the patient, or "
    "where an error is returned, there MUST NOT be a message displayed to the user.",
    Source(LSIR, "5.2, FGM IS Query Response", _LSIR_LINK), FGM)
ERRORS_REPORTED = Requirement(
    "FGMISQR006", "Where the FGM IS response interaction returns an error, there MUST be a mechanism for "
    "reporting the error to appropriate staff (e.g. The Information Technology department). (Checked on the "
    "wire: ACCESS_DENIED / ASID_CHECK_FAILED answers were received and not simply sent again.)",
    Source(LSIR, "5.2, FGM IS Query Response", _LSIR_LINK), ALL)
UNAVAILABLE = Requirement(
    "SG-RETRY-01", "A 503 (Service Unavailable) answer's Retry-After field indicates how long the user agent "
    "ought to wait before making a follow-up request. (Checked: no follow-up sooner than Retry-After, and no more "
    "than 3 attempts of one request in 10 seconds.)",
    Source("RFC 9110 HTTP Semantics", "10.2.3 Retry-After; 15.6.4 503 Service Unavailable",
           "https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3"), ALL)
SLOW = Requirement(
    "SG-TIMEOUT-01", "A slow answer is waited for, or given up on, without sending the request again in a tight "
    "loop. (Checked: after the sandbox's slow answer, no more than 3 attempts of one request in 10 seconds and "
    "none within 1 second of another.)",
    Source(SMSP_COMMON_CLIENT, "Operating and non-functional requirements (timeouts and retries are the client's)"),
    ALL)
SOAP_ACTION = Requirement(
    "SG-DSTU2-01", "SOAPAction: \"urn:nhs:names:services:clinicals-sync:FGMQuery_2_0\" (FGMCreate_1_0, "
    "FGMDelete_1_0): each message is sent with its interaction's SOAPAction.",
    Source(FGM_DSTU2_GUIDE, "Development: FGM query v2, create, delete", f"{FGM_REPO}/tree/master/pages/development"),
    ("fgm-dstu2",))
ASIDS = Requirement(
    "FGMISQ008", "The information in the query message ensures the following can be determined: ... Who sent the "
    "request ... Where the FGM IS query was requested from. (Checked: no 403 ASID_CHECK_FAILED: the message's "
    "source ASID is the sending system's, its destination the service's.)",
    Source(LSIR, "5.2 NHS Applicable Systems; Appendix B error table (ASID_CHECK_FAILED)", _LSIR_LINK),
    ("fgm-dstu2",))
UNSCHEDULED = Requirement(
    "SG-CPIS-01", "CP-IS distinguishes between Scheduled and Unscheduled care settings and/or episodes. These "
    "statuses are self-reported by the calling system ... When set to \"true\" the CP-IS Query originated from "
    "unscheduled care; when set to \"false\" ... from scheduled care. (Checked: IsUnscheduledAccessEvent sent as "
    "true or false on every CareTeam and AuditEvent search, one value per user; with --care-setting, the "
    "value for that setting.)",
    Source(CPIS_R4_GUIDE, "Build > Headers: Custom header for CP-IS - IsUnscheduledAccessEvent"), ("cpis-r4",))
CREATE_REMOVE = Requirement(
    "SG-FGM-01", "An FGM indicator is created for a child with a family history of FGM and removed when it was "
    "added in error or the child has had FGM. (Checked: at least one successful create and one successful remove.)",
    Source(f"{FGM_R4_GUIDE}; {FGM_DSTU2_GUIDE}", "Design > Interactions; Development: FGM create, delete"), FGM)
ALERT = Requirement(
    "FGMISQR001", "Where a current FGM IS Indicator for a patient exists on FGM IS, the applicable IT system MUST "
    "automatically alert the user to this.",
    Source(LSIR, "5.2, FGM IS Query Response", _LSIR_LINK), FGM)
NOT_STORED_AFTER_18 = Requirement(
    "FGMISQR009", "Local systems MUST NOT be enabled to store the FGM IS indicator once the patient is over the age "
    "of 18. FGM IS indicator data held locally MUST be deleted for those over this age.",
    Source(LSIR, "5.2, FGM IS Query Response", _LSIR_LINK), FGM)
LOCAL_AUDIT = Requirement(
    "MSCA-AUD-02", "Events that MUST be audited (the Mini Services Client Application's own audit trail).",
    Source(SMSP_COMMON_CLIENT, "Audit"), ALL)
REFRESH = Requirement(
    "FGMISQ0011", "Where the FGM IS Indicator information has been cached for a patient encounter, it MUST be "
    "refreshed every 24hrs. This requires a new FGM IS query against the FGM IS.",
    Source(LSIR, "5.2, FGM IS Query Response", _LSIR_LINK), FGM)
QUERY_RBAC = Requirement(
    "MSCA-FGMRISQ-01", "Where the Mini Service Client is using Spine compliant smartcards the user MUST have the "
    "appropriate RBAC enabled to view the FGM Indicator ... The activity code to view the FGM IS service is: B0370.",
    Source(SMSP_FGM_CLIENT, "3. FGM IS Query", _LSIR_LINK), FGM)

REQUIREMENTS: tuple[Requirement, ...] = (
    TRACE_IDS, VERIFIED, UNDER_18, NO_RECORD, ERRORS_REPORTED, UNAVAILABLE, SLOW, SOAP_ACTION, ASIDS, UNSCHEDULED,
    CREATE_REMOVE, QUERY_RBAC, ALERT, NOT_STORED_AFTER_18, REFRESH, LOCAL_AUDIT,
)
# What no request can show: how the client's screens and local store behave.
NOT_OBSERVABLE = {
    QUERY_RBAC.id: "How the client maps its users' access rights to B0370 is decided in the client; the service "
                   "sees a refusal only when it gets it wrong (see FGMISQR006).",
    ALERT.id: "How the alert is shown to the user happens in the client, not on the wire.",
    NOT_STORED_AFTER_18.id: "What the client stores locally cannot be seen from the service.",
    REFRESH.id: "Whether a cached indicator is refreshed within 24 hours needs the client's cache; the service "
                "sees only the queries.",
    LOCAL_AUDIT.id: "The client's own audit trail is not sent to the service.",
}
