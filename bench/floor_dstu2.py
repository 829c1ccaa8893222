"""Scenario 3's floor: an FGM-IS DSTU2 query (``POST /fhir/fgm/query`` over mutual TLS) doing only what the NHS
guide and our audit require, served by ``floor.py`` (its read connection, group commit and chain) beside scenario
1's and 4's. The benchmark reaches it as it reaches the service: wrk, then stunnel presenting the sandbox GP
system's certificate, then the same uvicorn stack (``ceiling.serve``), which puts the verified certificate in
the ASGI scope.

Per request:

1. the client certificate mapped to a registered system: the data set's ``systems.json`` (the service's
   ``SystemRegistry``, its revocations included), loaded once at start, its answer per certificate kept;
2. the body read (at most 1 MiB, as the service) and parsed with lxml's hardened parser (no DTD, entities or
   network, as ``api/dstu2/tree.py``), then read straight off the element tree: the Bundle of type message, its
   one MessageHeader (id, timestamp, event, source and destination endpoints, author), the Practitioner it
   names (its SDS or local id: the audited user), the requesting Organization (its ODS code) and the one
   Parameters (RiskIndicator FGM and NHSNumber, nothing else, once each);
3. the guide's checks in the service's order: ``source.endpoint`` the certificate's ASID,
   ``destination.endpoint`` this service's, the event one the system is registered for (each else 403
   ASID_CHECK_FAILED), then the content's errors, the event the query's and ``SOAPAction`` (when sent) the
   event; the NHS number's Modulus 11 check;
4. the patient (traced) and its active indicator in one indexed read (``floor.Floor.reader``);
5. the audit event, as the service records a DSTU2 query, appended to the chain and committed with its batch
   (``floor.Chain``) before the answer;
6. the response message: a DSTU2 Bundle whose MessageHeader answers the request's, with the Flag (written from
   a template: the same bytes as the service's writer), or the not-found outcome (the service's own writer,
   ``render_response``, as for every refusal).

XML only (the benchmark's format; the service also reads and writes JSON), and non-POST requests get the
floor's 404 (the service answers 405 as a response message): both favour the floor.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from datetime import datetime, timezone
from typing import Any, Final, Protocol
from xml.sax.saxutils import escape

import orjson
from lxml import etree

from safeguarding.api.dstu2 import codes
from safeguarding.api.dstu2.codes import (
    ASID_CHECK_FAILED,
    AUTHOR_CREDENTIALS_ERROR,
    COULD_NOT_CONNECT_TO_SPINE,
    INVALID_NHS_NUMBER,
    INVALID_PARAMETER,
    MESSAGE_NOT_WELL_FORMED,
    NO_RECORD_FOUND,
    SpineCode,
)
from safeguarding.api.dstu2.messages import Interaction, RequestHeader
from safeguarding.api.dstu2.writer import render_response
from safeguarding.api.hardening import SECURITY_HEADERS
from safeguarding.domain.caller import System
from safeguarding.domain.nhs_number import is_valid
from safeguarding.security.registry import SystemRegistry
from safeguarding.settings import SANDBOX_SERVICE_ASID, Layout


class Floor(Protocol):
    """What the query needs of ``floor.Floor`` (one worker's state), named here so this module does not import
    ``floor``, which imports it."""

    systems: SystemRegistry
    reader: sqlite3.Connection
    chain: Any

    def cutoff(self) -> str: ...

API: Final = "fgm-dstu2"
QUERY_PATH: Final = "/fhir/fgm/query"
SERVICE_ASID: Final = SANDBOX_SERVICE_ASID  # ceiling.serve serves with the sandbox's settings
MAX_BODY: Final = 1024 * 1024  # api/pipeline.py
XML_TYPES: Final = frozenset({"text/xml", "application/xml", "application/xml+fhir", "application/fhir+xml"})
CONTENT_TYPE: Final = (b"content-type", b"application/xml+fhir;charset=utf-8")
QUERY: Final = codes.EVENT_QUERY_REQUEST
REQUEST_EVENTS: Final = frozenset(i.request_event for i in Interaction)
ASID_PREFIX: Final = codes.ASID_ENDPOINT_PREFIX
PRACTITIONER_SYSTEMS: Final = (codes.SDS_USER_ID_SYSTEM, codes.SDS_ROLE_PROFILE_ID_SYSTEM,
                               codes.LOCAL_IDENTIFIER_SYSTEM)
INSTANT: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")  # a FHIR instant
ATTRIBUTE_ENTITIES: Final = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}  # as libxml2 writes them

# The patient (traced, born) and its active indicator in one indexed look-up.
SEARCH_SQL: Final = ("SELECT p.verified, p.birth_date, i.id, i.assessment_date FROM patients p "
                     "LEFT JOIN fgm_indicators i ON i.nhs_number = p.nhs_number AND i.status = 'active' "
                     "WHERE p.nhs_number = ?")

# The service's diagnostics (api/dstu2/endpoints.py, reader.py, tree.py), for the rows the floor refuses with.
NO_RECORD_TEXT: Final = "No active FGM risk indicator is held for this patient"
NOT_WELL_FORMED: Final = (MESSAGE_NOT_WELL_FORMED, "The message is not a valid FGM-IS query message")
NO_SYSTEM: Final = (ASID_CHECK_FAILED, "The client certificate does not belong to a registered system")
WRONG_SOURCE: Final = (ASID_CHECK_FAILED, "MessageHeader.source.endpoint is not the ASID of the client certificate")
WRONG_DESTINATION: Final = (ASID_CHECK_FAILED, "MessageHeader.destination.endpoint is not the ASID of this service")
NOT_ALLOWED: Final = (ASID_CHECK_FAILED, "The sending system is not registered for this interaction")
WRONG_PATH: Final = (INVALID_PARAMETER, "MessageHeader.event.code is not the interaction of the URL it was posted to")
WRONG_SOAP_ACTION: Final = (INVALID_PARAMETER, "The SOAPAction header does not match MessageHeader.event.code")
NO_AUTHOR: Final = (AUTHOR_CREDENTIALS_ERROR, "The author has neither an SDS user id nor a local identifier")
BAD_PARAMETERS: Final = (INVALID_PARAMETER, "Parameters must hold RiskIndicator FGM and NHSNumber, once each")
INVALID_NUMBER: Final = (INVALID_NHS_NUMBER,
                         "The NHS number is not 10 digits with a valid Modulus 11 check digit")
NOT_TRACED: Final = (INVALID_NHS_NUMBER, "The NHS number is not a verified NHS number")
UNAVAILABLE: Final = (COULD_NOT_CONNECT_TO_SPINE, "The service is temporarily unavailable")
Row = tuple[SpineCode, str]

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                         remove_comments=True, remove_pis=True)  # the event loop's thread only


def registry(layout: Layout) -> SystemRegistry:
    """The systems registry of the data set's copy, read once (the service re-reads it when it changes)."""
    return SystemRegistry.load(layout.registry)


class Invalid(Exception):
    """A message refused with ``row``; ``header`` once the MessageHeader was read (the answer addresses it)."""

    def __init__(self, row: Row, header: Header | None = None) -> None:
        super().__init__(row[1])
        self.row, self.header = row, header


class Header:
    __slots__ = ("message_id", "timestamp", "event", "source", "destination")

    def __init__(self, message_id: str, timestamp: str, event: str, source: str, destination: str) -> None:
        self.message_id, self.timestamp, self.event = message_id, timestamp, event
        self.source, self.destination = source, destination

    def typed(self) -> RequestHeader:
        """As the service's writer takes it (refusals only)."""
        return RequestHeader(self.message_id, datetime.fromisoformat(self.timestamp), self.event, self.source,
                             self.destination, "")


def value(element: Any, tag: str, row: Row = NOT_WELL_FORMED) -> str:
    """The ``value`` of ``element``'s one child ``tag`` (a qualified name), stripped; refused when absent,
    empty or repeated."""
    found = element.findall(tag)
    text = found[0].get("value") if len(found) == 1 else None
    text = text.strip() if text else None
    if not text:
        raise Invalid(row)
    return text


def child(element: Any, tag: str) -> Any:
    found = element.findall(tag)
    if len(found) != 1:
        raise Invalid(NOT_WELL_FORMED)
    return found[0]


def asid(endpoint: str) -> str:
    number = endpoint[len(ASID_PREFIX):] if endpoint.startswith(ASID_PREFIX) else ""
    if not (number.isascii() and number.isdigit() and len(number) <= 20):
        raise Invalid(NOT_WELL_FORMED)
    return number


class Message:
    """What the floor needs of a query message: its header, the audited user and the NHS number."""

    __slots__ = ("header", "user_id", "role_profile_id", "org_code", "nhs_number")

    def __init__(self, body: bytes) -> None:
        if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
            raise Invalid(NOT_WELL_FORMED)
        try:
            root = etree.fromstring(body, PARSER)
        except (etree.XMLSyntaxError, ValueError):
            raise Invalid(NOT_WELL_FORMED) from None
        if root.getroottree().docinfo.doctype:
            raise Invalid(NOT_WELL_FORMED)
        tag = root.tag
        ns = tag[:tag.index("}") + 1] if tag[:1] == "{" else ""
        if ns not in ("{http://hl7.org/fhir}", "") or tag[len(ns):] != "Bundle":
            raise Invalid(NOT_WELL_FORMED)
        if value(root, f"{ns}type") != "message":
            raise Invalid(NOT_WELL_FORMED)
        resources: list[Any] = []
        by_reference: dict[str, Any] = {}
        for entry in root.iterchildren(f"{ns}entry"):
            inner = list(child(entry, f"{ns}resource").iterchildren(etree.Element))
            if len(inner) != 1 or not inner[0].tag.startswith(ns):
                raise Invalid(NOT_WELL_FORMED)
            resource = inner[0]
            kind = resource.tag[len(ns):]
            ids = resource.findall(f"{ns}id")
            if ids:
                reference = f"{kind}/{value(resource, f'{ns}id')}"
                if reference in by_reference:
                    raise Invalid(NOT_WELL_FORMED)
                by_reference[reference] = resource
            resources.append((kind, resource))
        kinds = [kind for kind, _ in resources]
        if not kinds or kinds[0] != "MessageHeader" or kinds.count("MessageHeader") != 1:
            raise Invalid(NOT_WELL_FORMED)
        node = resources[0][1]
        timestamp = value(node, f"{ns}timestamp")
        try:
            if not INSTANT.fullmatch(timestamp):
                raise ValueError(timestamp)
            datetime.fromisoformat(timestamp)
        except ValueError:
            raise Invalid(NOT_WELL_FORMED) from None
        event = child(node, f"{ns}event")
        header = Header(value(node, f"{ns}id"), timestamp, value(event, f"{ns}code"),
                        asid(value(child(node, f"{ns}source"), f"{ns}endpoint")),
                        asid(value(child(node, f"{ns}destination"), f"{ns}endpoint")))
        self.header = header
        try:  # from here on, a refusal answers this message
            if (not codes.same_canonical(value(event, f"{ns}system"), codes.MESSAGE_EVENT_SYSTEM)
                    or header.event not in REQUEST_EVENTS):
                raise Invalid(NOT_WELL_FORMED)
            author = value(child(node, f"{ns}author"), f"{ns}reference")
            practitioner = by_reference.get(author) if author.startswith("Practitioner/") else None
            if practitioner is None:
                raise Invalid(NOT_WELL_FORMED)
            ids = identifiers(practitioner, ns, PRACTITIONER_SYSTEMS)
            sds_user, role_profile, local = (ids.get(system) for system in PRACTITIONER_SYSTEMS)
            if header.event == QUERY and not (sds_user or local):
                raise Invalid(NO_AUTHOR)
            self.user_id = (sds_user or f"local:{local}")[:64]
            self.role_profile_id = (role_profile or "")[:64]
            self.org_code = self._organization(ns, practitioner, resources, by_reference)
            self.nhs_number = self._parameters(ns, node, resources, by_reference)
        except Invalid as refused:
            refused.header = header
            raise

    @staticmethod
    def _organization(ns: str, practitioner: Any, resources: list[Any], by_reference: dict[str, Any]) -> str | None:
        """The requesting organisation's ODS code: the one the Practitioner's role names, else the only one."""
        managing = practitioner.findall(f"{ns}practitionerRole/{ns}managingOrganization")
        if len(managing) > 1:
            raise Invalid(NOT_WELL_FORMED)
        if managing:
            reference = value(managing[0], f"{ns}reference")
            node = by_reference.get(reference) if reference.startswith("Organization/") else None
            if node is None:
                raise Invalid(NOT_WELL_FORMED)
        else:
            organizations = [resource for kind, resource in resources if kind == "Organization"]
            if not organizations:
                return None
            if len(organizations) > 1:
                raise Invalid(NOT_WELL_FORMED)
            node = organizations[0]
        code = identifiers(node, ns, (codes.ODS_ORGANIZATION_CODE_SYSTEM,)).get(codes.ODS_ORGANIZATION_CODE_SYSTEM)
        if code is None:
            raise Invalid(NOT_WELL_FORMED)
        return code[:16]

    @staticmethod
    def _parameters(ns: str, header: Any, resources: list[Any], by_reference: dict[str, Any]) -> str:
        """The NHS number: the one Parameters (the one ``MessageHeader.data`` names, when it names one) holds
        RiskIndicator FGM and NHSNumber as strings, once each, and nothing else; the number passes Modulus 11."""
        candidates = [resource for kind, resource in resources if kind == "Parameters"]
        if len(candidates) != 1:
            raise Invalid(NOT_WELL_FORMED)
        data = header.findall(f"{ns}data")
        if data and (len(data) > 1 or by_reference.get(value(data[0], f"{ns}reference")) is not candidates[0]):
            raise Invalid(NOT_WELL_FORMED)
        found: dict[str, str] = {}
        for parameter in candidates[0].iterchildren(f"{ns}parameter"):
            name = value(parameter, f"{ns}name", BAD_PARAMETERS)
            values = [element for element in parameter.iterchildren(etree.Element)
                      if element.tag != f"{ns}name"]
            if name in found or len(values) != 1 or values[0].tag != f"{ns}valueString":
                raise Invalid(BAD_PARAMETERS)
            found[name] = (values[0].get("value") or "").strip()
        if found.keys() != {"RiskIndicator", "NHSNumber"} or found["RiskIndicator"] != codes.RISK_INDICATOR_FGM:
            raise Invalid(BAD_PARAMETERS)
        if not is_valid(found["NHSNumber"]):
            raise Invalid(INVALID_NUMBER)
        return found["NHSNumber"]


def identifiers(node: Any, ns: str, systems: tuple[str, ...]) -> dict[str, str]:
    """The node's identifier values by (canonical) system, for the given systems; a repeated system refused."""
    found: dict[str, str] = {}
    for identifier in node.iterchildren(f"{ns}identifier"):
        system = identifier.find(f"{ns}system")
        text = identifier.find(f"{ns}value")
        system_uri = (system.get("value") or "").strip() if system is not None else ""
        number = (text.get("value") or "").strip() if text is not None else ""
        if not system_uri or not number:
            continue
        key = codes.canonical(system_uri)
        if key in systems:
            if key in found:
                raise Invalid(NOT_WELL_FORMED)
            found[key] = number
    return found


def soap_action(raw: bytes) -> str:
    """A SOAPAction as an event code (api/dstu2/endpoints.py ``_soap_action``)."""
    return raw.decode("latin-1").strip().strip('"').strip().replace("clinicals-sync/", "clinicals-sync:", 1)


def wire_fact(raw: bytes) -> str:
    """``soap_action`` as the audit event's ``wire`` records it (api/wire.py ``_code``)."""
    text = raw.decode("latin-1").strip().strip('"')
    ok = 0 < len(text) <= 128 and all(c.isascii() and (c.isalnum() or c in "._:-/#") for c in text)
    return text if ok else "other"


def instant() -> str:
    now = datetime.now(timezone.utc)
    return now.isoformat(timespec="milliseconds" if now.microsecond else "seconds")


def found(answered: str, requester: str, flag_id: str, nhs_number: str, start: str) -> bytes:
    """The query response with the Flag: the bytes ``render_response`` writes, from a template."""
    message_id = str(uuid.uuid4())
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<Bundle xmlns="http://hl7.org/fhir"><id value="{message_id}"/><meta><profile value="'
        f'{codes.PROFILE_MESSAGE_BUNDLE}"/></meta><type value="message"/><entry><resource><MessageHeader>'
        f'<id value="{message_id}"/><meta><profile value="{codes.PROFILE_RESPONSE_HEADER}"/></meta>'
        f'<timestamp value="{instant()}"/><event><system value="{codes.MESSAGE_EVENT_SYSTEM}"/><code value="'
        f'{codes.EVENT_QUERY_RESPONSE}"/></event><response><identifier value="'
        f'{escape(answered, ATTRIBUTE_ENTITIES)}"/><code value="ok"/></response><source><endpoint value="'
        f'{ASID_PREFIX}{SERVICE_ASID}"/></source><destination><endpoint value="{ASID_PREFIX}{requester}"/>'
        f'</destination><data><reference value="Flag/{flag_id}"/></data></MessageHeader></resource></entry>'
        f'<entry><resource><Flag><id value="{flag_id}"/><meta><profile value="{codes.PROFILE_RIS_FLAG}"/></meta>'
        f'<contained><Patient><id value="patient"/><meta><profile value="{codes.PROFILE_RIS_PATIENT}"/></meta>'
        f'<identifier><system value="{codes.NHS_NUMBER_SYSTEM}"/><value value="{nhs_number}"/></identifier>'
        f'</Patient></contained><status value="active"/><period><start value="{start}"/></period><subject>'
        f'<reference value="#patient"/></subject><code><coding><system value="{codes.RISK_INDICATOR_SYSTEM}"/>'
        f'<code value="{codes.RISK_INDICATOR_FGM}"/></coding></code></Flag></resource></entry></Bundle>'
    ).encode()


def refused(row: Row, header: Header | None, requester: str | None) -> bytes:
    """A refusal (or the not-found answer) as the service writes it, answering the message when it was read."""
    return render_response(Interaction.QUERY, header.typed() if header is not None else None, outcome=row[0],
                           diagnostics=row[1], service_asid=SERVICE_ASID, message_id=str(uuid.uuid4()),
                           timestamp=datetime.now(timezone.utc), fmt="xml", requester_asid=requester)


async def read_body(receive: Any) -> bytes | None:
    """The request body (None: the client left); more than ``MAX_BODY`` is refused as not well formed."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks) if size <= MAX_BODY else b""


async def query(floor: Floor, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``POST /fhir/fgm/query``: checked, read, audited (committed) and answered."""
    body = await read_body(receive)
    if body is None:
        return
    certificate = scope.get("extensions", {}).get("tls", {}).get("client_cert_der")
    system: System | None = floor.systems.system_for_certificate(certificate) if certificate else None
    content_type = actions = None
    for name, raw in scope["headers"]:
        if name == b"content-type":
            content_type = raw
        elif name == b"soapaction":
            actions = [*(actions or []), raw]
    message: Message | None = None
    row: Row | None = None
    header: Header | None = None
    try:
        kind = (content_type or b"").split(b";", 1)[0].strip().lower().decode("latin-1")
        if kind not in XML_TYPES:
            raise Invalid(NOT_WELL_FORMED)
        message = Message(body)
        header = message.header
    except Invalid as refusal:
        row, header = refusal.row, refusal.header
    if system is None:
        row, message = NO_SYSTEM, None  # not identified: nobody to audit but the refusal
    elif header is not None:  # the ASIDs and the event before any content error
        if header.source != system.asid:
            row = WRONG_SOURCE
        elif header.destination != SERVICE_ASID:
            row = WRONG_DESTINATION
        elif header.event in REQUEST_EVENTS and header.event not in system.interactions:
            row = NOT_ALLOWED
        elif message is not None and header.event != QUERY:
            row = WRONG_PATH
        elif message is not None and actions and (len(actions) > 1 or soap_action(actions[0]) not in ("", QUERY)):
            row = WRONG_SOAP_ACTION
    nhs_number = resource_id = answer = None
    if message is not None and row is None:
        nhs_number = message.nhs_number
        read = floor.reader.execute(SEARCH_SQL, (nhs_number,)).fetchone()
        if read is None or not read[0]:
            row = NOT_TRACED
        elif read[2] is not None and read[1] is not None and read[1] > floor.cutoff():  # shown while a minor
            resource_id, answer = read[2], read
        else:
            row = (NO_RECORD_FOUND, NO_RECORD_TEXT)
    status, outcome = (row[0].http_status, row[0].code) if row is not None else (200, "OK")
    request_id = str(uuid.uuid4())
    recorded_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    user = ((message.user_id, message.role_profile_id, None, message.org_code or system.ods_code)
            if message is not None and system is not None else
            (None, None, None, system.ods_code if system is not None else None))
    wire = orjson.dumps({"ids": [], "soap_action": wire_fact(actions[0])} if actions else {"ids": []}).decode()
    try:
        await floor.chain.append((recorded_at, API, "query", status, outcome, request_id, None, None,
                                  system.asid if system else None, system.ods_code if system else None, *user,
                                  nhs_number, resource_id, wire))
    except Exception:  # noqa: BLE001 - not audited, so not answered as asked
        row, answer = UNAVAILABLE, None
        status = row[0].http_status
    requester = header.source if header is not None else system.asid if system is not None else None
    if answer is not None and header is not None and requester is not None:
        content = found(header.message_id, requester, answer[2], nhs_number or "", answer[3])
    else:
        content = refused(row or UNAVAILABLE, header, requester)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"x-request-id", request_id.encode()), CONTENT_TYPE,
                            (b"content-length", str(len(content)).encode()), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": content})
