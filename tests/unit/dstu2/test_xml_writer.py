"""The DSTU2 XML writer (``writer._xml_bytes``) writes exactly the bytes lxml does for the same resource: it is
compared with a tree built and serialised by lxml (the writer it replaced) on generated resources, and on the
response messages of every interaction."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from safeguarding.api.dstu2 import codes, writer
from safeguarding.api.dstu2.messages import FoundFlag, Interaction, RequestHeader

FHIR = "{http://hl7.org/fhir}"


def lxml_bytes(resource: dict[str, object]) -> bytes:
    """The reference: the resource as an lxml tree, serialised by libxml2."""
    root = etree.Element(f"{FHIR}{resource['resourceType']}", nsmap={None: codes.FHIR_NS})
    fill(root, resource)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def fill(parent: etree._Element, obj: dict[str, object]) -> None:
    for key, value in obj.items():
        if key == "resourceType":
            continue
        for item in value if isinstance(value, list) else [value]:
            element = etree.SubElement(parent, f"{FHIR}{key}")
            if isinstance(item, str):
                element.set("value", item)
            elif isinstance(item, dict) and "resourceType" in item:
                fill(etree.SubElement(element, f"{FHIR}{item['resourceType']}"), item)
            else:
                assert isinstance(item, dict)
                fill(element, item)


# Text XML can carry (no C0 controls but tab, newline and carriage return; no surrogates or U+FFFE/FFFF),
# weighted towards what an escaper must get right, and a template must not read: format fields, and the slot
# the templates are made with.
TEXT = st.one_of(
    st.sampled_from(["", " ", "&", "<", ">", '"', "'", "\t", "\n", "\r", "\r\n", "&amp;", "]]>", "é", "😀", "\u2028",
                     "{0}", "}{", "\ue0000\ue001"]),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\ufffe\uffff"
                          + "".join(chr(c) for c in range(32) if chr(c) not in "\t\n\r")), max_size=12),
)
KEYS = st.sampled_from(["id", "value", "system", "code", "display", "reference", "endpoint", "status", "extension"])
RESOURCE_TYPES = st.sampled_from(["Patient", "Flag", "OperationOutcome", "MessageHeader"])


def _element(children: st.SearchStrategy[dict[str, object]]) -> st.SearchStrategy[dict[str, object]]:
    item = st.one_of(TEXT, children,
                     st.builds(lambda t, d: {"resourceType": t, **d}, RESOURCE_TYPES, children))
    return st.dictionaries(KEYS, st.one_of(item, st.lists(item, max_size=3)), max_size=4)


RESOURCES = st.builds(lambda t, d: {"resourceType": t, **d}, RESOURCE_TYPES,
                      st.recursive(st.dictionaries(KEYS, TEXT, max_size=3), _element, max_leaves=12))


@settings(max_examples=800, deadline=None)
@given(RESOURCES)
def test_the_same_bytes_as_lxml(resource: dict[str, object]) -> None:
    assert writer._xml_bytes(resource) == lxml_bytes(resource)


@pytest.mark.parametrize("value", ["\x00", "a\x01b", "\x1f", "\ufffe", "\ud800"])
def test_a_value_xml_cannot_carry_is_refused_as_lxml_refuses_it(value: str) -> None:
    resource: dict[str, object] = {"resourceType": "Flag", "id": value}
    with pytest.raises(ValueError):
        lxml_bytes(resource)
    with pytest.raises(ValueError):
        writer._xml_bytes(resource)


HEADER = RequestHeader(message_id='id-"with"-&-<markup>', timestamp=datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc),
                       event_code="FGMQuery_2_0", source_asid="047192794544", destination_asid="990101",
                       author_reference="Practitioner/1")
FLAG = FoundFlag(flag_id="4f1c6b5e-0d57-4b7e-9a53-1b0e1c1a2b3c", nhs_number="9912003888",
                 assessment_date=date(2026, 9, 1))


RESPONSES = [
    (Interaction.QUERY, None, FLAG),
    (Interaction.QUERY, codes.NO_RECORD_FOUND, None),
    (Interaction.CREATE, None, None),
    (Interaction.DELETE, codes.INVALID_PARAMETER, None),
    (Interaction.QUERY, codes.DATA_RETURNED_FROM_LOCAL_STORE_SPINE_UNAVAILABLE, FLAG),  # a Flag and a warning
]
MESSAGE_ID = "0f7e8c4c-6a7b-4a52-8d4f-0b6f1e2d3c4b"
WHEN = datetime(2026, 12, 2, 10, 0, 1, 500000, tzinfo=timezone.utc)


def both_formats(interaction: Interaction, header: RequestHeader | None, **arguments: Any) -> tuple[bytes, bytes]:
    """A response message as XML (written from its shape's template) and as JSON (``_bundle``'s object itself)."""
    written = [writer.render_response(interaction, header, fmt=fmt, **arguments)
               for fmt in ("xml", "json")]
    return written[0], written[1]


@pytest.mark.parametrize(("interaction", "outcome", "flag"), RESPONSES)
def test_every_response_message_is_what_lxml_writes(interaction: Interaction, outcome: codes.SpineCode | None,
                                                    flag: FoundFlag | None) -> None:
    written, as_json = both_formats(interaction, HEADER, outcome=outcome, flag=flag, service_asid="990101",
                                    message_id=MESSAGE_ID, timestamp=WHEN,
                                    diagnostics="Something & <else>" if outcome else None)
    assert written == lxml_bytes(orjson.loads(as_json))
    assert written.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<Bundle xmlns=\"http://hl7.org/fhir\">")
    assert b'value="id-&quot;with&quot;-&amp;-&lt;markup&gt;"' in written


HEADERS = st.builds(RequestHeader, message_id=TEXT, timestamp=st.just(WHEN), event_code=st.just("FGMQuery_2_0"),
                    source_asid=TEXT, destination_asid=st.just("990101"), author_reference=st.just("Practitioner/1"))
FLAGS = st.builds(FoundFlag, flag_id=TEXT, nhs_number=TEXT, assessment_date=st.dates())


@settings(max_examples=400, deadline=None)
@given(response=st.sampled_from(RESPONSES), header=st.one_of(st.none(), HEADERS), flag=st.one_of(st.none(), FLAGS),
       service_asid=TEXT, requester_asid=st.one_of(st.none(), TEXT), diagnostics=st.one_of(st.none(), TEXT))
def test_a_message_written_from_its_template_is_what_lxml_writes(
        response: tuple[Interaction, codes.SpineCode | None, FoundFlag | None], header: RequestHeader | None,
        flag: FoundFlag | None, service_asid: str, requester_asid: str | None, diagnostics: str | None) -> None:
    """Every shape (with or without a destination, a Flag, an outcome, diagnostics), with values an escaper must get
    right, the same template used again and again: the bytes lxml writes for the message's own object."""
    interaction, outcome, _ = response
    if outcome is None:
        diagnostics = None
    if interaction is not Interaction.QUERY or (outcome is not None and outcome.http_status >= 300):
        flag = None  # only a query's success, or its warning, carries a Flag
    elif flag is None and outcome is None:
        outcome = codes.NO_RECORD_FOUND
    written, as_json = both_formats(interaction, header, outcome=outcome, flag=flag, service_asid=service_asid,
                                    message_id=MESSAGE_ID, timestamp=WHEN, diagnostics=diagnostics,
                                    requester_asid=requester_asid)
    assert written == lxml_bytes(orjson.loads(as_json))


@pytest.mark.parametrize("value", ["\x00", "a\x01b", "\x1f", "\ufffe", "\ud800"])
def test_a_response_value_xml_cannot_carry_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        writer.render_response(Interaction.QUERY, None, outcome=codes.NO_RECORD_FOUND, diagnostics=f"no{value}",
                               service_asid="990101", message_id=MESSAGE_ID, timestamp=WHEN, fmt="xml")
