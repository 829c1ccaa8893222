"""The sandbox's scenarios: for each answer a client must handle, how to make the sandbox give it.

Each scenario is a request template (``{{variable}}`` placeholders, Postman's syntax: ``{{$guid}}`` and
``{{$isoTimestamp}}`` are fresh per request) and the answer it gets. ``sandbox describe --json`` lists
them, the API collection (``supplier/collection.py``) is made from them, and the tests send every one
over HTTPS. None changes anything: each is a refusal, a read, or a failure injected in the sandbox.

Variables: ``base`` (the service's URL), ``service_asid``, ``assessment_date`` (a recent date),
``future_date`` (tomorrow), ``birth_date`` (a child's), and one bearer token per sandbox user:
``token_fgm`` (B0370+B0380), ``token_fgm_query`` (B0370), ``token_no_fgm`` (B0107, refused by FGM-IS),
``token_ed`` (CP-IS, unscheduled care), ``token_gp`` (CP-IS, scheduled care). ``cert`` names the
sandbox system whose client certificate the request is sent with.
"""

# ruff: noqa: S105, S106, S107  (token *variable names*, never tokens)
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api.dstu2.example_messages import ACTIONS, template
from ..domain import nhs_number
from . import scenarios as sim
from .data import REMOVED_INDICATOR_ID

NHS = nhs_number.SYSTEM
FGM = "/fgm/FHIR/R4"
CPIS = "/cpis/FHIR/R4"
GP_SYSTEM, QUERY_ONLY_SYSTEM, SANDBOX_CITY = "047192794544", "200000000117", "300000000101"
DSTU2_ACTIONS = ACTIONS
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
REMOVAL_EXTENSION = "https://fhir.nhs.uk/England/StructureDefinition/Extension-England-FlagRemovalReason"
REMOVAL_SYSTEM = "https://fhir.nhs.uk/England/CodeSystem/England-FGMRemovalReason"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # after {{base}}
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    cert: str | None = None  # a sandbox system's ASID: send with its client certificate


@dataclass(frozen=True)
class Scenario:
    id: str
    api: str  # fgm-r4 | fgm-dstu2 | cpis-r4
    trigger: str  # what to send, in words (the NHS number or header that does it)
    triggers: str  # what the service answers, in words
    status: int
    code: str  # the details code the answer carries ("OK" for a success)
    request: Request
    nhs_number: str | None = None
    header: str | None = None
    diagnostics: str | None = None  # R4: the OperationOutcome's diagnostics, exactly
    retry_after: bool = False
    slow: bool = False

    @property
    def interaction(self) -> str:
        """The interaction the request is, as the audit names it."""
        method, path = self.request.method, self.request.path.split("?", 1)[0]
        if self.api == "fgm-dstu2":
            return path.rsplit("/", 1)[1]
        if self.api == "fgm-r4":
            if method == "GET":
                return "search" if path == f"{FGM}/Flag" else "read"
            return {"POST": "create", "PUT": "remove"}[method]
        return {f"{CPIS}/CareTeam": "careteam-search", f"{CPIS}/AuditEvent": "auditevent-search",
                CPIS: "upload"}.get(path, "other")

    def describe(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"id": self.id, "api": self.api, "trigger": self.trigger, "triggers": self.triggers,
                                 "status": self.status, "code": self.code}
        if self.nhs_number:
            facts["nhs_number"] = self.nhs_number
        if self.header:
            facts["header"] = self.header
        return facts


def _r4(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {{{{{token}}}}}", "Accept": "application/fhir+json",
            "X-Request-ID": "{{$guid}}", **extra}


def _search(number: str, token: str = "token_fgm", **extra: str) -> Request:
    return Request("GET", f"{FGM}/Flag?patient:identifier={NHS}|{number}", _r4(token, **extra))


def _flag(number: str, *, code: str = "902961000000107", status: str = "active", start: str = "{{assessment_date}}",
          removal: str | None = None, flag_id: str | None = None) -> str:
    parts = ['"resourceType":"Flag"', f'"status":"{status}"',
             f'"code":{{"coding":[{{"system":"http://snomed.info/sct","code":"{code}"}}]}}',
             f'"subject":{{"identifier":{{"system":"{NHS}","value":"{number}"}}}}', f'"period":{{"start":"{start}"}}']
    if flag_id:
        parts.insert(1, f'"id":"{flag_id}"')
    if removal is not None:
        parts.append(f'"extension":[{{"url":"{REMOVAL_EXTENSION}","valueCodeableConcept":{{"coding":'
                     f'[{{"system":"{REMOVAL_SYSTEM}","code":"{removal}"}}]}}}}]')
    return "{" + ",".join(parts) + "}"


def _create(number: str, **flag: Any) -> Request:
    return Request("POST", f"{FGM}/Flag", _r4("token_fgm", **{"Content-Type": "application/fhir+json"}),
                   _flag(number, **flag))


def _remove(path_id: str, body_id: str, **flag: Any) -> Request:
    return Request("PUT", f"{FGM}/Flag/{path_id}", _r4("token_fgm", **{"Content-Type": "application/fhir+json"}),
                   _flag("9990000107", flag_id=body_id, **flag))


def message(kind: str) -> str:
    """The NHS guide's example message for ``kind`` (query, create, delete), with sandbox variables."""
    return template(kind)


def _dstu2(kind: str, number: str, *, system: str = GP_SYSTEM, action: str | None = None,
           body: str | None = None, delete_reason: str = "1") -> Request:
    text = body if body is not None else (
        message(kind).replace("{{nhs_number}}", number).replace("{{source_asid}}", system)
        .replace("{{delete_reason}}", delete_reason))
    return Request("POST", f"/fhir/fgm/{kind}", {"Content-Type": "text/xml",
                                                  "SOAPAction": f'"{action or DSTU2_ACTIONS[kind]}"',
                                                  "X-Request-ID": "{{$guid}}"}, text, cert=system)


def _careteam(number: str, token: str = "token_ed", unscheduled: str = "false", **extra: str) -> Request:
    return Request("GET", f"{CPIS}/CareTeam?patient:identifier={NHS}|{number}",
                   _r4(token, IsUnscheduledAccessEvent=unscheduled, **extra))


def _upload(number: str) -> Request:
    plan = ('{"resourceType":"CarePlan","status":"active","intent":"plan","category":[{"coding":[{"system":'
            '"http://snomed.info/sct","code":"342191000000101"}]}],"subject":{"identifier":{"system":"' + NHS +
            '","value":"' + number + '"}},"period":{"start":"{{assessment_date}}"},"contained":[{"resourceType":'
            '"CareTeam","id":"la","name":"Sandbox City Council","telecom":[{"system":"phone","value":"01134960001",'
            '"use":"work"}]}],"careTeam":[{"reference":"#la"}]}')
    body = '{"resourceType":"Bundle","type":"batch","entry":[{"resource":' + plan + \
        ',"request":{"method":"POST","url":"CarePlan"}}]}'
    return Request("POST", CPIS, {"Content-Type": "application/fhir+json", "X-Request-ID": "{{$guid}}"}, body,
                   cert=SANDBOX_CITY)


_BAD_CHECK_DIGIT = "9990000019"
_INVALID_NHS = "Invalid NHS number"
_DENIED_FGM = "The sender or receiver's ASID is not authorised for this interaction"
_UNAVAILABLE = "The service is temporarily unavailable"
_SLOW_HEADER = f"X-Sandbox-Scenario: {sim.SLOW_SCENARIO}"

SCENARIOS: tuple[Scenario, ...] = (
    # --- FGM-IS FHIR R4: the NHS guide's error rows -------------------------------------------------
    Scenario("r4-search-invalid-nhs-number", "fgm-r4", f"search for {_BAD_CHECK_DIGIT} (wrong check digit)",
             "400 INVALID_SEARCH_DATA", 400, "INVALID_SEARCH_DATA", _search(_BAD_CHECK_DIGIT),
             _BAD_CHECK_DIGIT, diagnostics=_INVALID_NHS),
    Scenario("r4-search-unverified-nhs-number", "fgm-r4", "search for 9990000093 (NHS number not verified)",
             "400 INVALID_SEARCH_DATA: only verified numbers may be used", 400, "INVALID_SEARCH_DATA",
             _search("9990000093"), "9990000093", diagnostics=_INVALID_NHS),
    Scenario("r4-search-not-traced", "fgm-r4", "search for 9990000115 (no demographics)",
             "400 INVALID_SEARCH_DATA", 400, "INVALID_SEARCH_DATA", _search("9990000115"), "9990000115",
             diagnostics=_INVALID_NHS),
    Scenario("r4-search-no-record", "fgm-r4", "search for 9990000026 (no indicator)",
             "200, an empty searchset Bundle (R4's 'no record found')", 200, "OK", _search("9990000026"),
             "9990000026"),
    Scenario("r4-search-bad-trace-id", "fgm-r4", "an X-Request-ID that is not 1-128 of A-Za-z0-9._:-",
             "400 PRECONDITION_FAILED", 400, "PRECONDITION_FAILED",
             Request("GET", f"{FGM}/Flag?patient:identifier={NHS}|9990000018",
                     {"Authorization": "Bearer {{token_fgm}}", "X-Request-ID": "not/valid"}),
             diagnostics="Missing or invalid head parameter"),
    Scenario("r4-search-access-denied", "fgm-r4", "search as a user without B0370 (token_no_fgm)",
             "403 ACCESS_DENIED", 403, "ACCESS_DENIED", _search("9990000018", "token_no_fgm"),
             diagnostics=_DENIED_FGM),
    Scenario("r4-create-access-denied", "fgm-r4", "create as a user with B0370 only (token_fgm_query)",
             "403 ACCESS_DENIED", 403, "ACCESS_DENIED",
             Request("POST", f"{FGM}/Flag", _r4("token_fgm_query", **{"Content-Type": "application/fhir+json"}),
                     _flag("9990000026")), diagnostics=_DENIED_FGM),
    Scenario("r4-no-token", "fgm-r4", "search without a bearer token", "401 ACCESS_DENIED with WWW-Authenticate",
             401, "ACCESS_DENIED", Request("GET", f"{FGM}/Flag?patient:identifier={NHS}|9990000018",
                                           {"X-Request-ID": "{{$guid}}"}),
             diagnostics="Missing or invalid access token (sandbox only: no bearer token)"),
    Scenario("r4-create-invalid-nhs-number", "fgm-r4", f"create for {_BAD_CHECK_DIGIT} (wrong check digit)",
             "400 INVALID_VALUE", 400, "INVALID_VALUE", _create(_BAD_CHECK_DIGIT), _BAD_CHECK_DIGIT,
             diagnostics=_INVALID_NHS),
    Scenario("r4-create-wrong-code", "fgm-r4", "create with a code other than 902961000000107",
             "400 UNSUPPORTED_VALUE", 400, "UNSUPPORTED_VALUE", _create("9990000026", code="123456789"),
             diagnostics="Code must be 902961000000107"),
    Scenario("r4-create-wrong-status", "fgm-r4", "create with status inactive", "400 UNSUPPORTED_VALUE", 400,
             "UNSUPPORTED_VALUE", _create("9990000026", status="inactive"),
             diagnostics="Status must be active on this interaction"),
    Scenario("r4-create-over-18", "fgm-r4", "create for 9990000069 (aged 18)", "400 VALIDATION_ERROR", 400,
             "VALIDATION_ERROR", _create("9990000069"), "9990000069", diagnostics="Patient is over 18"),
    Scenario("r4-create-male", "fgm-r4", "create for 9990000050 (a boy)", "400 VALIDATION_ERROR", 400,
             "VALIDATION_ERROR", _create("9990000050"), "9990000050",
             diagnostics="Patient gender must be female, unknown or indeterminate"),
    Scenario("r4-create-already-set", "fgm-r4", "create for 9990000018 (already has an indicator)",
             "400 VALIDATION_ERROR", 400, "VALIDATION_ERROR", _create("9990000018"), "9990000018",
             diagnostics="Flag value was already set"),
    Scenario("r4-create-removal-reason", "fgm-r4", "create with a removal reason extension",
             "400 VALIDATION_ERROR", 400, "VALIDATION_ERROR", _create("9990000026", removal="2"),
             diagnostics="Removal reason not allowed on this interaction"),
    Scenario("r4-create-future-date", "fgm-r4", "create with period.start tomorrow", "400 VALIDATION_ERROR",
             400, "VALIDATION_ERROR", _create("9990000026", start="{{future_date}}"),
             diagnostics="period.start (the assessment date) must be a full date that is not in the future"),
    Scenario("r4-remove-unknown-id", "fgm-r4", f"remove Flag/{UNKNOWN_ID} (no such indicator)",
             "400 RESOURCE_NOT_FOUND", 400, "RESOURCE_NOT_FOUND",
             _remove(UNKNOWN_ID, UNKNOWN_ID, status="inactive", removal="2"), diagnostics="Resource not found"),
    Scenario("r4-remove-id-mismatch", "fgm-r4", "remove with a body id other than the URL's", "400 INVALID_VALUE",
             400, "INVALID_VALUE", _remove(UNKNOWN_ID, "another-id", status="inactive", removal="2"),
             diagnostics="ID specified in the URL does not match the ID specified in the resource"),
    Scenario("r4-remove-no-reason", "fgm-r4", "remove without the removal reason extension",
             "400 VALIDATION_ERROR", 400, "VALIDATION_ERROR", _remove(UNKNOWN_ID, UNKNOWN_ID, status="inactive"),
             diagnostics="Removal reason must be supplied"),
    Scenario("r4-remove-bad-reason", "fgm-r4", "remove with removal reason code 1", "400 VALIDATION_ERROR", 400,
             "VALIDATION_ERROR", _remove(UNKNOWN_ID, UNKNOWN_ID, status="inactive", removal="1"),
             diagnostics="Removal reason must be code 0 or 2 of England-FGMRemovalReason"),
    Scenario("r4-remove-wrong-status", "fgm-r4", "remove with status active", "400 UNSUPPORTED_VALUE", 400,
             "UNSUPPORTED_VALUE", _remove(UNKNOWN_ID, UNKNOWN_ID, status="active", removal="2"),
             diagnostics="Status must be inactive or entered-in-error on this interaction"),
    Scenario("r4-remove-already-removed", "fgm-r4", f"remove Flag/{REMOVED_INDICATOR_ID} (9990000255's, removed)",
             "400 VALIDATION_ERROR", 400, "VALIDATION_ERROR",
             Request("PUT", f"{FGM}/Flag/{REMOVED_INDICATOR_ID}",
                     _r4("token_fgm", **{"Content-Type": "application/fhir+json"}),
                     _flag("9990000255", flag_id=REMOVED_INDICATOR_ID, status="inactive", removal="2")),
             "9990000255", diagnostics="Flag has already been removed"),
    Scenario("r4-read-unknown-id", "fgm-r4", f"read Flag/{UNKNOWN_ID}", "404 RESOURCE_NOT_FOUND", 404,
             "RESOURCE_NOT_FOUND", Request("GET", f"{FGM}/Flag/{UNKNOWN_ID}", _r4("token_fgm")),
             diagnostics="Resource not found"),
    # --- FGM-IS: patients whose facts the rules turn on ------------------------------------------------
    Scenario("r4-restricted-patient", "fgm-r4", "search for 9990000077 (restricted PDS record)",
             "200, a searchset Bundle (a restricted record is still a child FGM-IS answers for)", 200, "OK",
             _search("9990000077"), "9990000077"),
    Scenario("r4-turns-18-tomorrow", "fgm-r4", "search for 9990000085 (turns 18 tomorrow)",
             "200 with her active Flag today; an empty Bundle from tomorrow", 200, "OK", _search("9990000085"),
             "9990000085"),
    # --- failures injected in the sandbox (scenarios.py) -----------------------------------------------
    Scenario("r4-demographics-unavailable", "fgm-r4", f"search for {sim.DEMOGRAPHICS_UNAVAILABLE}",
             "503 SERVICE_UNAVAILABLE with Retry-After (demographics could not be read)", 503,
             "SERVICE_UNAVAILABLE", _search(sim.DEMOGRAPHICS_UNAVAILABLE), sim.DEMOGRAPHICS_UNAVAILABLE,
             diagnostics=_UNAVAILABLE, retry_after=True),
    Scenario("r4-store-unavailable", "fgm-r4", f"search for {sim.STORE_UNAVAILABLE}",
             "503 SERVICE_UNAVAILABLE with Retry-After (the store could not be reached)", 503,
             "SERVICE_UNAVAILABLE", _search(sim.STORE_UNAVAILABLE), sim.STORE_UNAVAILABLE,
             diagnostics=_UNAVAILABLE, retry_after=True),
    Scenario("r4-slow-answer-patient", "fgm-r4", f"search for {sim.SLOW_ANSWER}",
             "200 after the configured delay (a slow demographics source)", 200, "OK", _search(sim.SLOW_ANSWER),
             sim.SLOW_ANSWER, slow=True),
    Scenario("r4-slow-answer-header", "fgm-r4", f"any request with {_SLOW_HEADER}",
             "its usual answer after the configured delay", 200, "OK",
             _search("9990000026", **{"X-Sandbox-Scenario": sim.SLOW_SCENARIO}), header=_SLOW_HEADER, slow=True),
    # --- FGM-IS DSTU2 messaging: the NHS guide's error rows ----------------------------------------
    Scenario("dstu2-query-found", "fgm-dstu2", "query for 9990000018", "200, the Flag in a response message",
             200, "OK", _dstu2("query", "9990000018"), "9990000018"),
    Scenario("dstu2-query-no-record", "fgm-dstu2", "query for 9990000026 (no indicator)", "404 NO_RECORD_FOUND",
             404, "NO_RECORD_FOUND", _dstu2("query", "9990000026"), "9990000026"),
    Scenario("dstu2-query-invalid-nhs-number", "fgm-dstu2", f"query for {_BAD_CHECK_DIGIT}",
             "400 INVALID_NHS_NUMBER", 400, "INVALID_NHS_NUMBER", _dstu2("query", _BAD_CHECK_DIGIT),
             _BAD_CHECK_DIGIT),
    Scenario("dstu2-query-unverified", "fgm-dstu2", "query for 9990000093 (not verified)",
             "400 INVALID_NHS_NUMBER", 400, "INVALID_NHS_NUMBER", _dstu2("query", "9990000093"), "9990000093"),
    Scenario("dstu2-query-wrong-soapaction", "fgm-dstu2", "a query with the create SOAPAction",
             "400 INVALID_PARAMETER", 400, "INVALID_PARAMETER",
             _dstu2("query", "9990000018", action=DSTU2_ACTIONS["create"])),
    Scenario("dstu2-not-well-formed", "fgm-dstu2", "a query whose body is not well-formed XML",
             "400 MESSAGE_NOT_WELL_FORMED", 400, "MESSAGE_NOT_WELL_FORMED",
             _dstu2("query", "", body="<Bundle xmlns=\"http://hl7.org/fhir\"><type value=\"message\"/>")),
    Scenario("dstu2-asid-check-failed", "fgm-dstu2", f"a create from {QUERY_ONLY_SYSTEM} (registered for query only)",
             "403 ASID_CHECK_FAILED", 403, "ASID_CHECK_FAILED",
             _dstu2("create", "9990000026", system=QUERY_ONLY_SYSTEM)),
    Scenario("dstu2-create-over-18", "fgm-dstu2", "create for 9990000069 (aged 18)", "400 PATIENT_OVER_18", 400,
             "PATIENT_OVER_18", _dstu2("create", "9990000069"), "9990000069"),
    Scenario("dstu2-create-already-set", "fgm-dstu2", "create for 9990000018", "422 FLAG_ALREADY_SET", 422,
             "FLAG_ALREADY_SET", _dstu2("create", "9990000018"), "9990000018"),
    Scenario("dstu2-delete-no-record", "fgm-dstu2", "delete for 9990000026 (no indicator)", "404 NO_RECORD_FOUND",
             404, "NO_RECORD_FOUND", _dstu2("delete", "9990000026"), "9990000026"),
    Scenario("dstu2-store-unavailable", "fgm-dstu2", f"query for {sim.STORE_UNAVAILABLE}",
             "500 COULD_NOT_CONNECT_TO_SPINE", 500, "COULD_NOT_CONNECT_TO_SPINE",
             _dstu2("query", sim.STORE_UNAVAILABLE), sim.STORE_UNAVAILABLE),
    Scenario("dstu2-demographics-unavailable", "fgm-dstu2", f"query for {sim.DEMOGRAPHICS_UNAVAILABLE}",
             "500 COULD_NOT_CONNECT_TO_SPINE", 500, "COULD_NOT_CONNECT_TO_SPINE",
             _dstu2("query", sim.DEMOGRAPHICS_UNAVAILABLE), sim.DEMOGRAPHICS_UNAVAILABLE),
    # --- CP-IS FHIR R4: the NHS guide's error rows and the plans' edges ---------------------------------
    Scenario("cpis-careteam-invalid-nhs-number", "cpis-r4", f"CareTeam search for {_BAD_CHECK_DIGIT}",
             "400 INVALID_SEARCH_DATA", 400, "INVALID_SEARCH_DATA", _careteam(_BAD_CHECK_DIGIT), _BAD_CHECK_DIGIT,
             diagnostics=_INVALID_NHS),
    Scenario("cpis-careteam-bad-unscheduled-header", "cpis-r4", "IsUnscheduledAccessEvent: maybe",
             "400 PRECONDITION_FAILED", 400, "PRECONDITION_FAILED", _careteam("9990000123", unscheduled="maybe"),
             diagnostics="Missing or invalid head parameter"),
    Scenario("cpis-careteam-access-denied", "cpis-r4", "CareTeam search as a user without B0107/B0170",
             "403 ACCESS_DENIED", 403, "ACCESS_DENIED", _careteam("9990000123", token="token_fgm"),
             diagnostics="Access has been denied to process this request"),
    Scenario("cpis-plan-ending-today", "cpis-r4", "CareTeam search for 9990000247 (plan ends today)",
             "200 with one CareTeam today (period.end today); empty from tomorrow", 200, "OK",
             _careteam("9990000247"), "9990000247"),
    Scenario("cpis-plan-ended", "cpis-r4", "CareTeam search for 9990000166 (plan ended)",
             "200, an empty searchset", 200, "OK", _careteam("9990000166"), "9990000166"),
    Scenario("cpis-restricted-patient", "cpis-r4", "CareTeam search for 9990000077 (restricted record)",
             "200, an empty searchset (no plan can be shared for a restricted record)", 200, "OK",
             _careteam("9990000077"), "9990000077"),
    # CP-IS plan upload (a local authority, by its client certificate): each entry's record code
    *(Scenario(f"cpis-upload-{name}", "cpis-r4", f"upload a plan for {number} as Sandbox City Council",
               f"200 batch-response, the entry refused with {code}", 200, code, _upload(number), number)
      for name, number, code in (("no-match", "9990000115", "CPR01"), ("restricted", "9990000077", "CPR02"),
                                 ("not-verified", "9990000093", "CPR03"), ("invalid-nhs-number", _BAD_CHECK_DIGIT,
                                                                          "CPR04"),
                                 ("superseded", "9990000190", "CPR05"))),
    Scenario("cpis-upload-demographics-unavailable", "cpis-r4",
             f"upload a plan for {sim.DEMOGRAPHICS_UNAVAILABLE} as Sandbox City Council",
             "503 SERVICE_UNAVAILABLE (file code CPF05 PDS unavailable) with Retry-After", 503, "SERVICE_UNAVAILABLE",
             _upload(sim.DEMOGRAPHICS_UNAVAILABLE), sim.DEMOGRAPHICS_UNAVAILABLE, diagnostics=_UNAVAILABLE,
             retry_after=True),
)


def described() -> list[dict[str, Any]]:
    return [scenario.describe() for scenario in SCENARIOS]


def scenario_for(api: str, interaction: str, nhs_number: str | None, header: str | None) -> list[str]:
    """The scenarios a request (its API, interaction, NHS number and X-Sandbox-Scenario value) exercised."""
    same = [s for s in SCENARIOS if s.api == api and s.interaction == interaction]
    found = [s.id for s in same if nhs_number and s.nhs_number == nhs_number]
    found += [s.id for s in same if header and s.header and s.header.endswith(header)]
    return found
