"""The FGM-IS DSTU2 codec against the NHS guide's example messages (DIGEST §1, A1, A3, A10, A11)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from lxml import etree

from safeguarding.api.dstu2 import codec, codes, tree
from safeguarding.api.dstu2.codec import MessageError, parse_request, render_response, response_status
from safeguarding.api.dstu2.messages import (
    CreateRequest,
    DeleteRequest,
    FoundFlag,
    Interaction,
    Organization,
    Practitioner,
    QueryRequest,
    RequestHeader,
)

# The NHS guide's example messages and value sets, copied from shared/spec/nhs/fgm-dstu2.
SPEC = Path(__file__).resolve().parents[2] / "fixtures" / "dstu2"
EXAMPLES = SPEC
FHIR = "http://hl7.org/fhir"
NS = {"f": FHIR}
VALID_NHS_NUMBER = "9912003888"
UTC = timezone.utc


def example(name: str) -> bytes:
    """An example message; the create example's NHS number (1234567890) fails Modulus 11, so swap it."""
    return (EXAMPLES / name).read_bytes().replace(b"1234567890", VALID_NHS_NUMBER.encode())


def edit(name: str, change: Callable[[etree._Element], object]) -> bytes:
    root = etree.fromstring(example(name))
    change(root)
    return etree.tostring(root)


def one(root: etree._Element, path: str) -> etree._Element:
    found = root.xpath(path, namespaces=NS)
    assert len(found) == 1, path
    return found[0]


def remove(path: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        found = root.xpath(path, namespaces=NS)
        assert found, path
        for element in found:
            element.getparent().remove(element)

    return change


def set_value(path: str, value: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        one(root, path).set("value", value)

    return change


def append(path: str, snippet: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        one(root, path).append(etree.fromstring(f'<wrap xmlns="{FHIR}">{snippet}</wrap>')[0])

    return change


def rename(path: str, new_local_name: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        one(root, path).tag = f"{{{FHIR}}}{new_local_name}"

    return change


MH = "/f:Bundle/f:entry[1]/f:resource/f:MessageHeader"
PARAMS = "//f:Parameters"
FLAG = "//f:Flag"
PATIENT = "//f:Flag/f:contained/f:Patient"
GP = "//f:Flag/f:contained/f:Organization"


def param(name: str) -> str:
    return f"{PARAMS}/f:parameter[f:name/@value='{name}']"


# =============================================================================================
# The guide's request examples
# =============================================================================================

QUERY_HEADER = RequestHeader(
    message_id="14daadee-26e1-4d6a-9e6a-7f4af9b58870",
    timestamp=datetime(2015, 7, 4, 9, 10, 13, tzinfo=UTC),
    event_code="urn:nhs:names:services:clinicals-sync:FGMQuery_2_0",
    source_asid="047192794540",
    destination_asid="990101234567",
    author_reference="Practitioner/41fe704c-18e5-11e5-b60b-1697f925ec7b",
)
EXPECTED_QUERY = QueryRequest(
    header=QUERY_HEADER,
    practitioner=Practitioner(sds_user_id=None, sds_role_profile_id=None, local_user_id="12456", name="Dr Town Wood"),
    organization=Organization(ods_code="SDT", name="Standon NHS Trust"),  # trailing space trimmed
    nhs_number="9999999999",
)
RKE = Organization(ods_code="RKE", name="THE WHITTINGTON HOSPITAL NHS TRUST")
SMARTCARD_USER = Practitioner(
    sds_user_id="200009876204", sds_role_profile_id="100077650987", local_user_id=None, name=None
)
EXPECTED_CREATE = CreateRequest(
    header=RequestHeader(
        message_id="29daadee-26e1-4d6a-9e6a-7f4af9b44444",
        timestamp=datetime(2015, 7, 4, 9, 10, 14, tzinfo=UTC),
        event_code="urn:nhs:names:services:clinicals-sync:FGMCreate_1_0",
        source_asid="047192794544",
        destination_asid="990101234567",
        author_reference="Practitioner/41fe704c-18e5-11e5-b60b-1697f925ec7b",
    ),
    practitioner=SMARTCARD_USER,
    organization=RKE,
    nhs_number=VALID_NHS_NUMBER,
    birth_date=date(2005, 1, 1),
    gp_ods_code="B86022",
    assessment_date=date(2015, 2, 4),
)
EXPECTED_DELETE = DeleteRequest(
    header=RequestHeader(
        message_id="32daadee-26e1-4d6a-9e6a-7f4af9b50000",
        timestamp=datetime(2015, 7, 4, 9, 10, 14, tzinfo=UTC),
        event_code="urn:nhs:names:services:clinicals-sync:FGMDelete_1_0",
        source_asid="047192794544",
        destination_asid="990101234567",
        author_reference="Practitioner/41fe704c-18e5-11e5-b60b-1697f925ec7b",
    ),
    practitioner=SMARTCARD_USER,
    organization=RKE,
    nhs_number="9999999999",
    delete_reason="1",
)
REQUEST_EXAMPLES = [
    ("query-v2-request.xml", EXPECTED_QUERY),
    ("create-request.xml", EXPECTED_CREATE),
    ("delete-request.xml", EXPECTED_DELETE),
]


@pytest.mark.parametrize(("name", "expected"), REQUEST_EXAMPLES)
def test_parses_every_request_example(name: str, expected: object) -> None:
    parsed = parse_request(example(name), "text/xml")
    assert parsed == expected
    assert parsed.header.timestamp.utcoffset() == timedelta(0)


def test_request_interaction_follows_the_event_code() -> None:
    assert [parse_request(example(n), "text/xml").interaction for n, _ in REQUEST_EXAMPLES] == [
        Interaction.QUERY,
        Interaction.CREATE,
        Interaction.DELETE,
    ]


@pytest.mark.parametrize("media_type", sorted(codec.XML_MEDIA_TYPES))
def test_every_xml_media_type_is_accepted(media_type: str) -> None:
    assert parse_request(example("query-v2-request.xml"), media_type) == EXPECTED_QUERY


def test_unmodified_create_example_has_an_invalid_nhs_number_and_keeps_its_header() -> None:
    with pytest.raises(MessageError) as caught:
        parse_request((EXAMPLES / "create-request.xml").read_bytes(), "text/xml")
    assert caught.value.spine_code is codes.INVALID_NHS_NUMBER
    assert caught.value.request_header == EXPECTED_CREATE.header
    assert "1234567890" not in caught.value.diagnostics


@pytest.mark.parametrize(("name", "expected"), REQUEST_EXAMPLES)
def test_missing_fhir_namespace_is_tolerated(name: str, expected: object) -> None:
    body = example(name).replace(b' xmlns="http://hl7.org/fhir"', b"")
    assert b"hl7.org" not in body
    assert parse_request(body, "application/xml") == expected


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # Root without a namespace, a resource in the FHIR namespace.
        (b"<Parameters>", b'<Parameters xmlns="http://hl7.org/fhir">'),
        # Root without a namespace, one element in the FHIR namespace.
        (b'<valueString value="FGM"/>', b'<valueString xmlns="http://hl7.org/fhir" value="FGM"/>'),
    ],
)
def test_namespace_must_be_consistent(old: bytes, new: bytes) -> None:
    body = example("query-v2-request.xml").replace(b' xmlns="http://hl7.org/fhir"', b"", 1)
    assert old in body
    with pytest.raises(MessageError) as caught:
        parse_request(body.replace(old, new), "text/xml")
    assert caught.value.spine_code is codes.MESSAGE_NOT_WELL_FORMED


@pytest.mark.parametrize("namespace", [b' xmlns="http://hl7.org/fhir"', b""], ids=["fhir", "none"])
def test_elements_outside_the_fhir_namespace_are_refused(namespace: bytes) -> None:
    body = example("query-v2-request.xml").replace(b' xmlns="http://hl7.org/fhir"', namespace, 1).replace(
        b'<valueString value="FGM"/>', b'<valueString xmlns="urn:example:other" value="FGM"/>'
    )
    with pytest.raises(MessageError) as caught:
        parse_request(body, "text/xml")
    assert caught.value.spine_code is codes.MESSAGE_NOT_WELL_FORMED
    assert caught.value.diagnostics == "The message mixes XML namespaces"


@pytest.mark.parametrize("namespace", [b' xmlns="http://hl7.org/fhir"', b""], ids=["fhir", "none"])
def test_xhtml_narrative_is_skipped_with_or_without_the_fhir_namespace(namespace: bytes) -> None:
    narrative = b'<text><div xmlns="http://www.w3.org/1999/xhtml"><p>Standon</p></div></text>'
    body = example("query-v2-request.xml").replace(b' xmlns="http://hl7.org/fhir"', namespace, 1)
    body = body.replace(b'<name value="Standon NHS Trust "/>', b'<name value="Standon NHS Trust "/>' + narrative)
    assert narrative in body
    assert parse_request(body, "text/xml") == EXPECTED_QUERY


def test_root_in_another_namespace_is_refused() -> None:
    body = example("query-v2-request.xml").replace(b"http://hl7.org/fhir", b"urn:example:other")
    with pytest.raises(MessageError) as caught:
        parse_request(body, "text/xml")
    assert caught.value.spine_code is codes.MESSAGE_NOT_WELL_FORMED


def _xml_tree(body: str) -> object:
    """The neutral tree an XML message is read into, or the refusal's diagnostics."""
    try:
        return tree._load(body.encode(), "text/xml")
    except tree._Invalid as refused:
        assert refused.spine_code is codes.MESSAGE_NOT_WELL_FORMED
        return refused.diagnostics


@pytest.mark.parametrize("namespace", [f' xmlns="{FHIR}"', ""], ids=["fhir", "none"])
def test_the_neutral_tree_of_an_xml_message(namespace: str) -> None:
    body = (f'<Bundle{namespace}><id value=" b1 "/><meta><profile value="p"/></meta><entry><resource><Flag>'
            '<id value="f"/><contained><Patient><id value="p1"/></Patient></contained>'
            '<code><coding><code value="1"/></coding><coding><code value="2"/></coding></code></Flag></resource>'
            '</entry><entry><resource><Parameters/></resource></entry>text <!-- c --><?pi x?></Bundle>')
    assert _xml_tree(body) == {
        "id": ["b1"], "meta": [{"profile": ["p"]}],
        "entry": [{"resource": [{"id": ["f"], "contained": [{"id": ["p1"], "resourceType": ["Patient"]}],
                                 "code": [{"coding": [{"code": ["1"]}, {"code": ["2"]}]}],
                                 "resourceType": ["Flag"]}]},
                  {"resource": [{"resourceType": ["Parameters"]}]}],
        "resourceType": ["Bundle"],
    }


def test_what_lies_under_a_value_or_a_narrative_is_not_read() -> None:
    body = (f'<Bundle xmlns="{FHIR}"><id value="b"><extension xmlns="urn:example:other"><x/></extension></id>'
            '<text><div xmlns="http://www.w3.org/1999/xhtml"><p xmlns="urn:example:other"/></div></text></Bundle>')
    assert _xml_tree(body) == {"id": ["b"], "text": [{}], "resourceType": ["Bundle"]}


def test_an_element_named_resource_type_does_not_change_the_resources_type() -> None:
    assert _xml_tree(f'<Bundle xmlns="{FHIR}"><resourceType value="Flag"/></Bundle>') == {"resourceType": ["Bundle"]}


@pytest.mark.parametrize(("inner", "refused"), [
    ("<Flag/>", False),
    ("<Flag/><Patient/>", True),
    ("", True),
    ('<Flag xmlns="urn:example:other"/>', True),
    ("text<!-- c --><Flag/>", False),
])
def test_a_resource_wrapper_holds_exactly_one_resource(inner: str, refused: bool) -> None:
    result = _xml_tree(f'<Bundle xmlns="{FHIR}"><entry><resource>{inner}</resource></entry></Bundle>')
    assert (result == "A resource wrapper does not hold exactly one resource") is refused


@pytest.mark.parametrize(("levels", "refused"), [(64, False), (65, True)])
def test_the_depth_limit_counts_elements_read_not_resource_wrappers(levels: int, refused: bool) -> None:
    # The Bundle is level 0; <resource> adds no level of its own (its resource is the next one), a value none.
    nested = "<entry><resource><Flag>" + "<x>" * (levels - 2) + '<id value="v"/>' + "</x>" * (levels - 2)
    body = f'<Bundle xmlns="{FHIR}">{nested}</Flag></resource></entry></Bundle>'
    assert (_xml_tree(body) == "The message is nested too deeply") is refused


@pytest.mark.parametrize(("first", "then", "diagnostics"), [
    ("<x" + ' xmlns="urn:example:other"/>', "<x>" * 70 + "</x>" * 70, "The message mixes XML namespaces"),
    ("<x>" * 70 + "</x>" * 70, "<x" + ' xmlns="urn:example:other"/>', "The message is nested too deeply"),
    ("<entry><resource/></entry>", "<x" + ' xmlns="urn:example:other"/>',
     "A resource wrapper does not hold exactly one resource"),
])
def test_the_first_problem_in_document_order_is_the_one_answered(first: str, then: str, diagnostics: str) -> None:
    assert _xml_tree(f'<Bundle xmlns="{FHIR}">{first}{then}</Bundle>') == diagnostics


@pytest.mark.parametrize(("name", "expected"), REQUEST_EXAMPLES)
def test_https_fhir_nhs_uk_canonicals_are_accepted(name: str, expected: object) -> None:
    body = example(name).replace(b"http://fhir.nhs.net/", b"https://fhir.nhs.uk/")
    assert b"fhir.nhs.net" not in body
    assert parse_request(body, "text/xml") == expected


def test_canonical_normaliser() -> None:
    assert codes.canonical("https://fhir.nhs.uk/Id/nhs-number") == codes.NHS_NUMBER_SYSTEM
    assert codes.canonical("HTTPS://FHIR.NHS.UK/Id/nhs-number") == "http://fhir.nhs.net/Id/nhs-number"
    assert codes.canonical("https://fhir-test.nhs.uk/ValueSet/x") == "http://fhir.nhs.net/ValueSet/x"
    assert codes.canonical("http://hl7.org/fhir/x") == "http://hl7.org/fhir/x"
    assert codes.same_canonical("https://fhir.nhs.uk/Id/nhs-number", "http://fhir.nhs.net/Id/nhs-number")
    assert not codes.same_canonical("https://fhir.nhs.uk/Id/NHS-number", "http://fhir.nhs.net/Id/nhs-number")
    assert not codes.same_canonical("https://example.org/Id/nhs-number", "http://fhir.nhs.net/Id/nhs-number")


def test_organization_is_optional() -> None:
    body = edit(
        "query-v2-request.xml",
        lambda root: (
            remove("//f:Practitioner/f:practitionerRole")(root),
            remove("//f:entry[f:resource/f:Organization]")(root),
        ),
    )
    assert parse_request(body, "text/xml").organization is None


def test_organization_found_without_a_practitioner_role() -> None:
    body = edit("query-v2-request.xml", remove("//f:Practitioner/f:practitionerRole"))
    assert parse_request(body, "text/xml").organization == EXPECTED_QUERY.organization


def test_practitioner_name_from_the_resource_wins_over_author_display() -> None:
    body = edit(
        "query-v2-request.xml",
        append("//f:Practitioner", '<name><family value="Wood"/><given value="Town"/><prefix value="Dr."/></name>'),
    )
    assert parse_request(body, "text/xml").practitioner.name == "Dr. Town Wood"


# =============================================================================================
# JSON (DSTU2 JSON rules): the same messages in JSON parse to the same requests
# =============================================================================================

# DSTU2 elements in these messages that repeat (0..*), so are arrays in JSON
# (except MessageHeader.response.identifier, a single id).
_REPEATING = {"entry", "profile", "contained", "identifier", "parameter", "coding", "destination", "data", "issue",
              "given", "family", "prefix", "careProvider", "practitionerRole"}


def xml_to_json(resource: etree._Element) -> dict[str, object]:
    """A test-side DSTU2 XML -> JSON converter (independent of the codec's own reader)."""
    out: dict[str, object] = {"resourceType": etree.QName(resource).localname}
    out.update(_json_members(resource))
    return out


def _json_members(element: etree._Element) -> dict[str, object]:
    out: dict[str, object] = {}
    for child in element.iterchildren(tag=etree.Element):
        name = etree.QName(child).localname
        if name in ("resource", "contained"):
            value: object = xml_to_json(child[0])
        elif child.get("value") is not None:
            value = child.get("value")
        else:
            value = _json_members(child)
        if name in _REPEATING and not (name == "identifier" and etree.QName(element).localname == "response"):
            out.setdefault(name, []).append(value)  # type: ignore[union-attr]
        else:
            assert name not in out, name
            out[name] = value
    return out


def as_json(body: bytes) -> bytes:
    return orjson.dumps(xml_to_json(etree.fromstring(body)))


@pytest.mark.parametrize("media_type", sorted(codec.JSON_MEDIA_TYPES))
@pytest.mark.parametrize(("name", "expected"), REQUEST_EXAMPLES)
def test_json_equivalents_of_the_request_examples(name: str, expected: object, media_type: str) -> None:
    assert parse_request(as_json(example(name)), media_type) == expected


def test_hand_written_json_query() -> None:
    body = orjson.dumps(
        {
            "resourceType": "Bundle",
            "id": "b1",
            "type": "message",
            "entry": [
                {
                    "resource": {
                        "resourceType": "MessageHeader",
                        "id": "h1",
                        "fhir_comments": ["DSTU2 JSON comments are ignored"],
                        "timestamp": "2024-05-01T12:00:00.250Z",
                        "_timestamp": {"extension": []},
                        "event": {"system": codes.MESSAGE_EVENT_SYSTEM, "code": codes.EVENT_QUERY_REQUEST},
                        "source": {"endpoint": "urn:nhs:addressing:asid:200000000001"},
                        "destination": [{"endpoint": "urn:nhs:addressing:asid:990101234567"}],
                        "author": {"reference": "Practitioner/p1"},
                        "data": [{"reference": "Parameters/q1"}],
                    }
                },
                {
                    "resource": {
                        "resourceType": "Parameters",
                        "id": "q1",
                        "parameter": [
                            {"name": "RiskIndicator", "valueString": "FGM"},
                            {"name": "NHSNumber", "valueString": VALID_NHS_NUMBER},
                        ],
                    }
                },
                {
                    "resource": {
                        "resourceType": "Practitioner",
                        "id": "p1",
                        "identifier": [
                            {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "U1"},
                            {"system": codes.SDS_ROLE_PROFILE_ID_SYSTEM, "value": "R1"},
                        ],
                        "name": {"text": "A Test"},
                    }
                },
            ],
        }
    )
    parsed = parse_request(body, "application/fhir+json")
    assert parsed == QueryRequest(
        header=RequestHeader(
            message_id="h1",
            timestamp=datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC),
            event_code=codes.EVENT_QUERY_REQUEST,
            source_asid="200000000001",
            destination_asid="990101234567",
            author_reference="Practitioner/p1",
        ),
        practitioner=Practitioner(sds_user_id="U1", sds_role_profile_id="R1", local_user_id=None, name="A Test"),
        organization=None,
        nhs_number=VALID_NHS_NUMBER,
    )


def _json_query() -> dict[str, object]:
    return orjson.loads(as_json(example("query-v2-request.xml")))


def test_json_nhs_number_must_be_a_string() -> None:
    document = _json_query()
    document["entry"][1]["resource"]["parameter"][1]["valueString"] = int(VALID_NHS_NUMBER)  # type: ignore[index]
    with pytest.raises(MessageError) as caught:
        parse_request(orjson.dumps(document), "application/json")
    assert caught.value.spine_code is codes.INVALID_PARAMETER
    assert caught.value.request_header == QUERY_HEADER


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'"Bundle"', b'{"resourceType": "Parameters"}', b"<Bundle/>"])
def test_json_that_is_not_a_bundle_is_not_well_formed(body: bytes) -> None:
    with pytest.raises(MessageError) as caught:
        parse_request(body, "application/json+fhir")
    assert caught.value.spine_code is codes.MESSAGE_NOT_WELL_FORMED
    assert caught.value.request_header is None


# =============================================================================================
# Error mapping (DIGEST §1.7). ``header_kept``: the error still carries the request's header.
# =============================================================================================

Q, C, D = "query-v2-request.xml", "create-request.xml", "delete-request.xml"
NWF, PARAM, NHS, AUTHOR = (
    codes.MESSAGE_NOT_WELL_FORMED,
    codes.INVALID_PARAMETER,
    codes.INVALID_NHS_NUMBER,
    codes.AUTHOR_CREDENTIALS_ERROR,
)


def _move_header_last(root: etree._Element) -> None:
    first = one(root, "/f:Bundle/f:entry[1]")
    root.append(first)


def _duplicate_header(root: etree._Element) -> None:
    root.append(etree.fromstring(etree.tostring(one(root, "/f:Bundle/f:entry[1]"))))


ERROR_CASES: list[tuple[str, str, Callable[[etree._Element], object], codes.SpineCode, bool]] = [
    # --- structure (MESSAGE_NOT_WELL_FORMED) ---
    ("not a Bundle", Q, rename("/f:Bundle", "Parameters"), NWF, False),
    ("not type message", Q, set_value("/f:Bundle/f:type", "collection"), NWF, False),
    ("no type", Q, remove("/f:Bundle/f:type"), NWF, False),
    ("MessageHeader not first", Q, _move_header_last, NWF, False),
    ("two MessageHeaders", Q, _duplicate_header, NWF, False),
    ("no entries", Q, remove("/f:Bundle/f:entry"), NWF, False),
    ("MessageHeader without id", Q, remove(f"{MH}/f:id"), NWF, False),
    ("timestamp without zone", Q, set_value(f"{MH}/f:timestamp", "2015-07-04T09:10:13"), NWF, False),
    ("timestamp is a date", Q, set_value(f"{MH}/f:timestamp", "2015-07-04"), NWF, False),
    ("timestamp impossible", Q, set_value(f"{MH}/f:timestamp", "2015-13-04T09:10:13Z"), NWF, False),
    ("source not an ASID", Q, set_value(f"{MH}/f:source/f:endpoint", "https://example.org"), NWF, False),
    ("no destination", Q, remove(f"{MH}/f:destination"), NWF, False),
    ("no author", Q, remove(f"{MH}/f:author"), NWF, False),
    ("unknown event code", Q, set_value(f"{MH}/f:event/f:code", codes.EVENT_QUERY_RESPONSE), NWF, True),
    ("v1 event code", Q, set_value(f"{MH}/f:event/f:code", "urn:nhs:names:services:clinicals-sync:FGMQuery_1_0"),
     NWF, True),
    ("unknown event system", Q,
     set_value(f"{MH}/f:event/f:system", "http://fhir.nhs.net/ValueSet/message-event-1-0"), NWF, True),
    ("author Practitioner missing", Q, remove("//f:entry[f:resource/f:Practitioner]"), NWF, True),
    ("author not a Practitioner reference", Q, set_value(f"{MH}/f:author/f:reference", "Organization/x"), NWF, True),
    ("managing Organization missing", D, remove("//f:entry[f:resource/f:Organization]"), NWF, True),
    ("Organization without ODS code", Q, remove("//f:Organization/f:identifier"), NWF, True),
    ("no Parameters", Q, remove("//f:entry[f:resource/f:Parameters]"), NWF, True),
    ("data points elsewhere", Q, set_value(f"{MH}/f:data/f:reference", "Parameters/other"), NWF, True),
    ("no Flag", C, remove("//f:entry[f:resource/f:Flag]"), NWF, True),
    ("Flag subject not contained", C, set_value(f"{FLAG}/f:subject/f:reference", "#nope"), NWF, True),
    ("careProvider not contained", C, set_value(f"{PATIENT}/f:careProvider/f:reference", "#nope"), NWF, True),
    # --- the author (AUTHOR_CREDENTIALS_ERROR) ---
    ("query author without identifiers", Q, remove("//f:Practitioner/f:identifier"), AUTHOR, True),
    ("create author without role profile", C,
     remove("//f:Practitioner/f:identifier[f:system/@value='http://fhir.nhs.net/Id/sds-role-profile-id']"),
     AUTHOR, True),
    ("delete author without SDS user id", D,
     remove("//f:Practitioner/f:identifier[f:system/@value='http://fhir.nhs.net/Id/sds-user-id']"), AUTHOR, True),
    # --- parameters (INVALID_PARAMETER) ---
    ("RiskIndicator not FGM", Q, set_value(f"{param('RiskIndicator')}/f:valueString", "CPIS"), PARAM, True),
    ("RiskIndicator lower case", D, set_value(f"{param('RiskIndicator')}/f:valueString", "fgm"), PARAM, True),
    ("RiskIndicator missing", Q, remove(param("RiskIndicator")), PARAM, True),
    ("NHSNumber missing", Q, remove(param("NHSNumber")), PARAM, True),
    ("NHSNumber repeated", Q,
     append(PARAMS, f'<parameter><name value="NHSNumber"/><valueString value="{VALID_NHS_NUMBER}"/></parameter>'),
     PARAM, True),
    ("unknown parameter", Q, append(PARAMS, '<parameter><name value="Other"/><valueString value="x"/></parameter>'),
     PARAM, True),
    ("delete parameter in a query", Q,
     append(PARAMS, '<parameter><name value="FGMDeleteReason"/><valueString value="1"/></parameter>'), PARAM, True),
    ("NHSNumber not a valueString", Q, rename(f"{param('NHSNumber')}/f:valueString", "valueCode"), PARAM, True),
    ("NHSNumber with two values", Q, append(param("NHSNumber"), '<valueCode value="x"/>'), PARAM, True),
    ("NHSNumber empty", Q, set_value(f"{param('NHSNumber')}/f:valueString", ""), PARAM, True),
    ("parameter with a part", Q, append(param("NHSNumber"), '<part><name value="x"/></part>'), PARAM, True),
    ("delete reason out of range", D, set_value(f"{param('FGMDeleteReason')}//f:code", "3"), PARAM, True),
    ("delete reason wrong system", D, set_value(f"{param('FGMDeleteReason')}//f:system", "http://example.org/r"),
     PARAM, True),
    ("delete reason missing", D, remove(param("FGMDeleteReason")), PARAM, True),
    ("delete reason as a string", D, lambda root: (
        remove(f"{param('FGMDeleteReason')}/f:valueCodeableConcept")(root),
        append(param("FGMDeleteReason"), '<valueString value="1"/>')(root),
    ), PARAM, True),
    ("delete reason two codes", D, append(f"{param('FGMDeleteReason')}/f:valueCodeableConcept",
     f'<coding><system value="{codes.DELETE_REASON_SYSTEM}"/><code value="2"/></coding>'), PARAM, True),
    ("Flag not active", C, set_value(f"{FLAG}/f:status", "inactive"), PARAM, True),
    ("Flag code not FGM", C, set_value(f"{FLAG}/f:code/f:coding/f:code", "CPIS"), PARAM, True),
    ("Flag code system wrong", C, set_value(f"{FLAG}/f:code/f:coding/f:system", "http://example.org/x"), PARAM, True),
    ("assessment date partial", C, set_value(f"{FLAG}/f:period/f:start", "2015-02"), PARAM, True),
    ("assessment date impossible", C, set_value(f"{FLAG}/f:period/f:start", "2015-02-30"), PARAM, True),
    ("assessment date missing", C, remove(f"{FLAG}/f:period"), PARAM, True),
    ("birth date missing", C, remove(f"{PATIENT}/f:birthDate"), PARAM, True),
    ("birth date not a date", C, set_value(f"{PATIENT}/f:birthDate", "01/01/2005"), PARAM, True),
    ("patient without NHS number", C, remove(f"{PATIENT}/f:identifier"), PARAM, True),
    ("careProvider missing", C, remove(f"{PATIENT}/f:careProvider"), PARAM, True),
    ("GP without ODS code", C, remove(f"{GP}/f:identifier"), PARAM, True),
    # --- NHS number (INVALID_NHS_NUMBER) ---
    ("query NHS number fails Modulus 11", Q, set_value(f"{param('NHSNumber')}/f:valueString", "9912003899"), NHS, True),
    ("query NHS number 9 digits", Q, set_value(f"{param('NHSNumber')}/f:valueString", "991200388"), NHS, True),
    ("query NHS number with spaces", Q, set_value(f"{param('NHSNumber')}/f:valueString", "991 200 3888"), NHS, True),
    ("delete NHS number letters", D, set_value(f"{param('NHSNumber')}/f:valueString", "99120038AB"), NHS, True),
    ("create NHS number fails Modulus 11", C, set_value(f"{PATIENT}/f:identifier/f:value", "1234567890"), NHS, True),
]


@pytest.mark.parametrize(
    ("name", "change", "expected", "header_kept"),
    [pytest.param(n, ch, e, k, id=label) for label, n, ch, e, k in ERROR_CASES],
)
def test_error_mapping(
    name: str, change: Callable[[etree._Element], object], expected: codes.SpineCode, header_kept: bool
) -> None:
    body = edit(name, change)
    with pytest.raises(MessageError) as caught:
        parse_request(body, "text/xml")
    error = caught.value
    assert error.spine_code is expected, error.diagnostics
    if header_kept:
        # What the error response needs to answer the request: its id and who sent it.
        original = parse_request(example(name), "text/xml").header
        assert error.request_header is not None
        assert (error.request_header.message_id, error.request_header.source_asid) == (
            original.message_id,
            original.source_asid,
        )
    else:
        assert error.request_header is None
    # Diagnostics may be logged: no NHS numbers, ids or other values from the message.
    assert error.diagnostics
    assert not re.search(r"\d{5,}", error.diagnostics)
    for value in ("9999999999", VALID_NHS_NUMBER, "1234567890", "Wood", "SDT", "RKE", "B86022", "CPIS", "daadee"):
        assert value not in error.diagnostics
        assert value not in str(error)


def test_every_error_case_changes_the_message() -> None:
    # Guards the table above: a mutation that did nothing would test the happy path instead.
    for label, name, change, _, _ in ERROR_CASES:
        assert edit(name, change) != etree.tostring(etree.fromstring(example(name))), label


@pytest.mark.parametrize(
    ("body", "media_type"),
    [
        (b"this is not XML", "text/xml"),
        (b"<Bundle", "application/xml"),
        (b"", "application/fhir+xml"),
        (b'<Bundle xmlns="http://hl7.org/fhir"><type value="message"/>&undefined;</Bundle>', "text/xml"),
    ],
)
def test_body_that_is_not_xml(body: bytes, media_type: str) -> None:
    with pytest.raises(MessageError) as caught:
        parse_request(body, media_type)
    assert caught.value.spine_code is codes.MESSAGE_NOT_WELL_FORMED
    assert caught.value.request_header is None


def test_unsupported_media_type() -> None:
    assert codec.media_format("text/plain") is None
    with pytest.raises(MessageError) as caught:
        parse_request(example("query-v2-request.xml"), "text/plain")
    assert caught.value.spine_code is codes.MESSAGE_NOT_WELL_FORMED


# =============================================================================================
# Hostile XML: refused, never resolved
# =============================================================================================

LAUGHS = "".join(
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
)
HOSTILE_DOCTYPES = {
    "billion-laughs": (f'<!DOCTYPE Bundle [<!ENTITY lol0 "lol">{LAUGHS}]>', "&lol9;"),
    "external-entity": ('<!DOCTYPE Bundle [<!ENTITY secret SYSTEM "file:///etc/passwd">]>', "&secret;"),
    "external-dtd": ('<!DOCTYPE Bundle SYSTEM "http://127.0.0.1:9/fhir.dtd">', ""),
    "doctype": ("<!DOCTYPE Bundle>", ""),
}


def hostile(doctype: str, entity_use: str) -> str:
    """The (valid) query example with a DOCTYPE, the entity used where the parser would not notice it."""
    text = example("query-v2-request.xml").decode()
    narrative = f'<text><div xmlns="http://www.w3.org/1999/xhtml">{entity_use}</div></text>'
    text = text.replace('<name value="Standon NHS Trust "/>', f'<name value="Standon NHS Trust "/>{narrative}')
    return text.replace("<Bundle", f"{doctype}\n<Bundle", 1)


def _utf16(text: str) -> bytes:
    # UTF-16 hides "<!DOCTYPE" from a byte scan, so this reaches the parser and the docinfo check.
    return text.encode("utf-16")


def test_hostile_documents_are_valid_messages_without_their_doctype() -> None:
    # The control for the test below: only the DOCTYPE makes these messages unacceptable.
    for _, entity_use in HOSTILE_DOCTYPES.values():
        assert parse_request(hostile("", entity_use.replace("&", "&amp;")).encode(), "text/xml") == EXPECTED_QUERY


@pytest.mark.parametrize(("doctype", "entity_use"), HOSTILE_DOCTYPES.values(), ids=HOSTILE_DOCTYPES.keys())
@pytest.mark.parametrize("encode", [str.encode, _utf16], ids=["utf-8", "utf-16"])
def test_dtds_and_entities_are_refused(doctype: str, entity_use: str, encode: Callable[[str], bytes]) -> None:
    with pytest.raises(MessageError) as caught:
        parse_request(encode(hostile(doctype, entity_use)), "text/xml")
    error = caught.value
    assert error.spine_code is codes.MESSAGE_NOT_WELL_FORMED
    # libxml2 may already reject an entity bomb itself; either way nothing was expanded.
    assert error.diagnostics in ("Document type declarations are not allowed", "The body is not well-formed XML")
    assert error.request_header is None
    assert "root:" not in str(error)
    assert "lol" not in str(error)


def test_the_parser_itself_never_resolves_entities(tmp_path: Path) -> None:
    # Belt and braces behind the DOCTYPE refusal: even the hardened parser leaves entities unexpanded.
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    document = f"""<?xml version="1.0" encoding="UTF-16"?>
<!DOCTYPE Bundle [<!ENTITY s SYSTEM "{secret.as_uri()}"><!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>
<Bundle xmlns="http://hl7.org/fhir"><x>&s;</x><y>&b;</y></Bundle>"""
    root = etree.fromstring(document.encode("utf-16"), tree._xml_parser())
    for text in ("".join(root.itertext()), etree.tostring(root).decode()):
        assert "TOP-SECRET-VALUE" not in text
        assert "aaaa" not in text


# =============================================================================================
# Responses, compared with the guide's examples
# =============================================================================================


def value_list(document: bytes, skip: Callable[[str], bool] = lambda path: False) -> list[tuple[str, str]]:
    """Every (path, value attribute) in document order: compares both content and element order."""
    root = etree.fromstring(document)
    out = []
    for element in root.iter(tag=etree.Element):
        value = element.get("value")
        if value is None:
            continue
        path = "/".join(etree.QName(e).localname for e in [*element.iterancestors()][::-1] + [element])
        if not skip(path):
            out.append((path, value))
    return out


def example_header(name: str) -> tuple[RequestHeader, str, str, datetime]:
    """The request header an example response answers, and the response's own id, ASID and time."""
    root = etree.fromstring((EXAMPLES / name).read_bytes())
    text = lambda path: one(root, path).get("value")  # noqa: E731
    asid = lambda path: text(path).rsplit(":", 1)[1]  # noqa: E731
    header = RequestHeader(
        message_id=text(f"{MH}/f:response/f:identifier"),
        timestamp=datetime(2015, 7, 4, 9, 10, 13, tzinfo=UTC),
        event_code="(not used)",
        source_asid=asid(f"{MH}/f:destination/f:endpoint"),
        destination_asid=asid(f"{MH}/f:source/f:endpoint"),
        author_reference="Practitioner/x",
    )
    timestamp = datetime.fromisoformat(text(f"{MH}/f:timestamp"))
    return header, text(f"{MH}/f:id"), asid(f"{MH}/f:source/f:endpoint"), timestamp


def _not_defined_by_the_guide(path: str) -> bool:
    # Bundle.id (we reuse the MessageHeader id), endpoint names, and ids of the resources that
    # are checked through their references instead.
    return (
        path == "Bundle/id"
        or path.endswith(("source/name", "destination/name"))
        or path in ("Bundle/entry/resource/OperationOutcome/id", "Bundle/entry/resource/Flag/contained/Patient/id")
        or path.endswith(("subject/reference", "response/details/reference"))
    )


def _render_like(name: str, interaction: Interaction, **kwargs: object) -> bytes:
    header, message_id, service_asid, timestamp = example_header(name)
    return render_response(
        interaction, header, service_asid=service_asid, message_id=message_id, timestamp=timestamp, fmt="xml",
        **kwargs,  # type: ignore[arg-type]
    )


def _lower_displays(values: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # The examples write "Invalid NHS Number"; the ValueSet (which we follow) says "Invalid NHS number".
    return [(p, v.lower() if p.endswith("coding/display") else v) for p, v in values]


def test_query_found_response_matches_the_example() -> None:
    flag = FoundFlag("8cb73a48-090d-469a-a2b2-04f1e6b11ea2", "1234567890", date(2015, 2, 4))
    rendered = _render_like("query-v2-response-found.xml", Interaction.QUERY, outcome=None, flag=flag)
    expected = (EXAMPLES / "query-v2-response-found.xml").read_bytes()
    assert value_list(rendered, _not_defined_by_the_guide) == value_list(expected, _not_defined_by_the_guide)
    root = etree.fromstring(rendered)
    patient_id = one(root, "//f:Flag/f:contained/f:Patient/f:id").get("value")
    assert one(root, "//f:Flag/f:subject/f:reference").get("value") == f"#{patient_id}"
    assert root.xpath("count(//f:OperationOutcome)", namespaces=NS) == 0
    assert response_status(Interaction.QUERY, None) == 200


@pytest.mark.parametrize(
    ("name", "interaction", "status"),
    [
        ("create-response-success.xml", Interaction.CREATE, 201),
        ("delete-response-success.xml", Interaction.DELETE, 200),
    ],
)
def test_success_responses_match_the_examples(name: str, interaction: Interaction, status: int) -> None:
    rendered = _render_like(name, interaction, outcome=None)
    expected = (EXAMPLES / name).read_bytes()
    assert value_list(rendered, _not_defined_by_the_guide) == value_list(expected, _not_defined_by_the_guide)
    assert len(etree.fromstring(rendered).xpath("/f:Bundle/f:entry", namespaces=NS)) == 1
    assert response_status(interaction, None) == status


@pytest.mark.parametrize(
    ("name", "interaction"),
    [
        ("query-v2-response-invalid-nhs-400.xml", Interaction.QUERY),
        ("create-response-invalid-nhs.xml", Interaction.CREATE),
    ],
)
def test_invalid_nhs_number_responses_match_the_examples(name: str, interaction: Interaction) -> None:
    rendered = _render_like(name, interaction, outcome=codes.INVALID_NHS_NUMBER)
    expected = value_list((EXAMPLES / name).read_bytes(), _not_defined_by_the_guide)
    # create-response-invalid-nhs.xml carries the query's response event, a slip in the guide.
    expected = [
        (p, interaction.response_event if p.endswith("MessageHeader/event/code") else v) for p, v in expected
    ]
    assert _lower_displays(value_list(rendered, _not_defined_by_the_guide)) == _lower_displays(expected)
    root = etree.fromstring(rendered)
    # details is 0..1 and the query example leaves it out; we always point at the OperationOutcome.
    outcome_id = one(root, "//f:OperationOutcome/f:id").get("value")
    assert one(root, f"{MH}/f:response/f:details/f:reference").get("value") == f"OperationOutcome/{outcome_id}"
    assert response_status(interaction, codes.INVALID_NHS_NUMBER) == 400


@pytest.mark.parametrize("outcome", list(codes.SPINE_CODES.values()), ids=lambda c: c.code)
def test_every_outcome_renders_its_row(outcome: codes.SpineCode) -> None:
    header, message_id, service_asid, timestamp = example_header("query-v2-response-invalid-nhs-400.xml")
    rendered = render_response(
        Interaction.DELETE, header, outcome=outcome, diagnostics="Parameter NHSNumber is missing",
        service_asid=service_asid, message_id="m-1", timestamp=timestamp, fmt="xml",
    )
    root = etree.fromstring(rendered)
    value = lambda path: one(root, path).get("value")  # noqa: E731
    expected_code = "ok" if outcome.http_status in (203, 404) else (
        "transient-error" if outcome.http_status >= 500 else "fatal-error")
    assert value(f"{MH}/f:response/f:code") == expected_code
    assert value(f"{MH}/f:response/f:details/f:reference") == "OperationOutcome/m-1"
    assert value(f"{MH}/f:event/f:code") == codes.EVENT_DELETE_RESPONSE
    issue = "//f:OperationOutcome/f:issue"
    assert value("//f:OperationOutcome/f:meta/f:profile") == codes.PROFILE_OPERATION_OUTCOME
    assert value(f"{issue}/f:severity") == outcome.severity
    assert value(f"{issue}/f:code") == outcome.issue_type
    assert value(f"{issue}/f:details/f:coding/f:system") == "http://fhir.nhs.net/ValueSet/spine-response-code-2-0"
    assert value(f"{issue}/f:details/f:coding/f:code") == outcome.code
    assert value(f"{issue}/f:details/f:coding/f:display") == outcome.display
    assert value(f"{issue}/f:diagnostics") == "Parameter NHSNumber is missing"
    assert [etree.QName(e).localname for e in one(root, issue)] == ["severity", "code", "details", "diagnostics"]
    assert response_status(Interaction.DELETE, outcome) == outcome.http_status


def test_no_record_found_is_ok_with_an_outcome() -> None:
    rendered = _render_like("query-v2-response-found.xml", Interaction.QUERY, outcome=codes.NO_RECORD_FOUND)
    root = etree.fromstring(rendered)
    assert one(root, f"{MH}/f:response/f:code").get("value") == "ok"
    assert [etree.QName(e[0][0]).localname for e in root.xpath("/f:Bundle/f:entry", namespaces=NS)] == [
        "MessageHeader",
        "OperationOutcome",
    ]
    assert root.xpath(f"count({MH}/f:data)", namespaces=NS) == 0
    assert one(root, "//f:issue/f:code").get("value") == "not-found"
    assert response_status(Interaction.QUERY, codes.NO_RECORD_FOUND) == 404


def test_response_without_a_request_header() -> None:
    kwargs = dict(outcome=codes.MESSAGE_NOT_WELL_FORMED, service_asid="990101234567", message_id="resp-1",
                  timestamp=datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), fmt="xml")
    rendered = render_response(Interaction.QUERY, None, **kwargs)  # type: ignore[arg-type]
    root = etree.fromstring(rendered)
    answered = one(root, f"{MH}/f:response/f:identifier").get("value")
    assert uuid.UUID(answered).version == 5
    assert answered != "resp-1"
    assert render_response(Interaction.QUERY, None, **kwargs) == rendered  # deterministic  # type: ignore[arg-type]
    assert root.xpath(f"count({MH}/f:destination)", namespaces=NS) == 0
    assert one(root, f"{MH}/f:response/f:code").get("value") == "fatal-error"
    assert one(root, f"{MH}/f:timestamp").get("value") == "2024-01-02T03:04:05.678+00:00"

    with_requester = etree.fromstring(
        render_response(Interaction.QUERY, None, requester_asid="200000000001", **kwargs)  # type: ignore[arg-type]
    )
    assert one(with_requester, f"{MH}/f:destination/f:endpoint").get("value") == "urn:nhs:addressing:asid:200000000001"


def test_error_response_answers_the_header_kept_in_the_error() -> None:
    body = edit(Q, set_value(f"{param('NHSNumber')}/f:valueString", "123"))
    with pytest.raises(MessageError) as caught:
        parse_request(body, "text/xml")
    rendered = render_response(
        Interaction.QUERY, caught.value.request_header, outcome=caught.value.spine_code,
        diagnostics=caught.value.diagnostics, service_asid="990101234567", message_id="r-9",
        timestamp=datetime(2024, 1, 1, tzinfo=UTC), fmt="xml",
    )
    root = etree.fromstring(rendered)
    assert one(root, f"{MH}/f:response/f:identifier").get("value") == QUERY_HEADER.message_id
    assert one(root, f"{MH}/f:destination/f:endpoint").get("value") == "urn:nhs:addressing:asid:047192794540"
    assert one(root, f"{MH}/f:source/f:endpoint").get("value") == "urn:nhs:addressing:asid:990101234567"
    assert one(root, "//f:issue/f:details/f:coding/f:code").get("value") == "INVALID_NHS_NUMBER"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interaction": Interaction.CREATE, "flag": FoundFlag("f", VALID_NHS_NUMBER, date(2020, 1, 1))},
        {"interaction": Interaction.QUERY, "flag": FoundFlag("f", VALID_NHS_NUMBER, date(2020, 1, 1)),
         "outcome": codes.INVALID_PARAMETER},
        {"interaction": Interaction.QUERY},
        {"interaction": Interaction.DELETE, "diagnostics": "x"},
        {"interaction": Interaction.DELETE, "timestamp": datetime(2024, 1, 1)},
    ],
)
def test_render_refuses_inconsistent_arguments(kwargs: dict[str, object]) -> None:
    arguments: dict[str, object] = dict(
        outcome=None, service_asid="990101234567", message_id="m", timestamp=datetime(2024, 1, 1, tzinfo=UTC),
        fmt="xml",
    )
    arguments.update(kwargs)
    interaction = arguments.pop("interaction")
    with pytest.raises(ValueError):
        render_response(interaction, QUERY_HEADER, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"outcome": None, "flag": FoundFlag("flag-1", VALID_NHS_NUMBER, date(2021, 3, 4))},
        {"outcome": codes.PATIENT_OVER_18, "diagnostics": "The patient is 18 or over"},
    ],
    ids=["found", "error"],
)
def test_json_response_is_the_xml_response_in_dstu2_json(kwargs: dict[str, object]) -> None:
    common: dict[str, object] = dict(
        service_asid="990101234567", message_id="m-2", timestamp=datetime(2024, 1, 1, 9, 0, tzinfo=UTC), **kwargs
    )
    as_xml = render_response(Interaction.QUERY, QUERY_HEADER, fmt="xml", **common)  # type: ignore[arg-type]
    as_json_bytes = render_response(Interaction.QUERY, QUERY_HEADER, fmt="json", **common)  # type: ignore[arg-type]
    document = orjson.loads(as_json_bytes)
    assert document == xml_to_json(etree.fromstring(as_xml))
    header = document["entry"][0]["resource"]
    assert document["resourceType"] == "Bundle" and document["type"] == "message"
    assert header["resourceType"] == "MessageHeader"
    assert header["destination"] == [{"endpoint": "urn:nhs:addressing:asid:047192794540"}]
    assert header["response"]["identifier"] == QUERY_HEADER.message_id


def test_xml_response_declares_the_fhir_namespace() -> None:
    rendered = render_response(
        Interaction.CREATE, QUERY_HEADER, outcome=None, service_asid="990101234567", message_id="m",
        timestamp=datetime(2024, 1, 1, tzinfo=UTC), fmt="xml",
    )
    assert rendered.startswith(b"<?xml")
    root = etree.fromstring(rendered)
    assert root.tag == f"{{{FHIR}}}Bundle"
    assert all(etree.QName(e).namespace == FHIR for e in root.iter(tag=etree.Element))
    assert codec.CONTENT_TYPES["xml"] == "application/xml+fhir;charset=utf-8"


# =============================================================================================
# The vocabulary against DIGEST §1.7 and the NHS ValueSets
# =============================================================================================

DIGEST_TABLE = {  # code: (HTTP, severity, issue type with the legal DSTU2 substitutions)
    "NO_RECORD_FOUND": (404, "error", "not-found"),
    "INVALID_NHS_NUMBER": (400, "error", "invalid"),
    "PATIENT_OVER_18": (400, "error", "invalid"),
    "INVALID_PARAMETER": (400, "error", "invalid"),
    "FLAG_ALREADY_SET": (422, "warning", "informational"),
    "MESSAGE_NOT_WELL_FORMED": (400, "error", "structure"),
    "ASID_CHECK_FAILED": (403, "error", "forbidden"),
    "INPUT_MESSAGE_VALIDATION_ERROR": (400, "error", "structure"),
    "RESPONSE_MESSAGE_VALIDATION_ERROR": (400, "error", "structure"),
    "DATA_RETURNED_FROM_LOCAL_STORE_SPINE_UNAVAILABLE": (203, "warning", "informational"),
    "COULD_NOT_CONNECT_TO_SPINE": (500, "fatal", "no-store"),
    "AUTHOR_CREDENTIALS_ERROR": (401, "fatal", "forbidden"),
    "GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE": (500, "fatal", "exception"),
}


def _value_set_concepts(name: str) -> dict[str, str]:
    root = etree.parse(str(SPEC / "ValueSets" / name)).getroot()
    return {
        c.find("f:code", NS).get("value"): c.find("f:display", NS).get("value")
        for c in root.iterfind(".//f:concept", NS)
    }


def test_spine_codes_match_the_digest_table_and_the_value_set() -> None:
    assert {c: (s.http_status, s.severity, s.issue_type) for c, s in codes.SPINE_CODES.items()} == DIGEST_TABLE
    assert {c: s.display for c, s in codes.SPINE_CODES.items()} == _value_set_concepts("spine-response-code-2-0.xml")
    assert all(getattr(codes, c) is s for c, s in codes.SPINE_CODES.items())


def test_delete_reasons_and_events_match_the_value_sets() -> None:
    assert dict(codes.DELETE_REASONS) == _value_set_concepts("fgm-delete-reason-codes-1-0.xml")
    events = _value_set_concepts("message-event-2-0.xml")
    assert {i.request_event for i in Interaction} | {i.response_event for i in Interaction} == set(events)
    assert Interaction.for_request_event("urn:nhs:names:services:clinicals-sync:FGMCreate_1_0") is Interaction.CREATE
    assert Interaction.for_request_event(codes.EVENT_CREATE_RESPONSE) is None
