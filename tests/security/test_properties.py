"""Property-based tests (Hypothesis): NHS number validation, the FHIR parsers (R4 ``parse_resource`` and the
DSTU2 ``parse_request`` never raise anything but their own refusal), and the FGM indicator rules.

Deterministic in the normal suite (the ``safeguarding`` profile in conftest.py); ``scripts/fuzz`` runs them
with the random ``fuzz`` profile and many more examples.
"""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.parameters import Parameters
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from safeguarding.api.dstu2.codec import MessageError, parse_request
from safeguarding.api.errors import ApiError
from safeguarding.api.formats import parse_resource
from safeguarding.domain import errors as d
from safeguarding.domain import fgm
from safeguarding.domain import nhs_number as nhs
from safeguarding.domain.fgm import Actor, Indicator, IndicatorStatus, RemovalReason
from safeguarding.domain.patients import Gender, Patient

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dstu2"
DIGITS = "0123456789"


# ---------------------------------------------------------------------------------------------
# NHS numbers
# ---------------------------------------------------------------------------------------------


def reference_is_valid(value: str) -> bool:
    """The NHS Data Dictionary's Modulus 11 algorithm, written out independently."""
    if len(value) != 10 or any(c not in DIGITS for c in value):
        return False
    remainder = sum(int(c) * weight for c, weight in zip(value[:9], range(10, 1, -1), strict=True)) % 11
    check = 11 - remainder
    if check == 11:
        check = 0
    return check != 10 and check == int(value[9])


stems = st.text(alphabet=DIGITS, min_size=9, max_size=9)


@st.composite
def valid_numbers(draw: st.DrawFn) -> str:
    stem = draw(stems)
    digit = nhs.check_digit(stem)
    assume(digit is not None)
    return f"{stem}{digit}"


@given(st.one_of(st.text(), st.text(alphabet=DIGITS + " ٠١٢٣٤٥٦٧٨٩０１２３\x00", max_size=12), st.binary(),
                 st.integers(), st.none(), st.floats(), st.lists(st.text(max_size=2))))
def test_nhs_number_validation_matches_the_algorithm_and_never_raises(value: object) -> None:
    assert nhs.is_valid(value) == (isinstance(value, str) and reference_is_valid(value))


@given(valid_numbers(), st.integers(0, 9), st.integers(1, 9))
def test_every_single_digit_error_is_caught(number: str, position: int, change: int) -> None:
    assert nhs.is_valid(number)
    wrong = number[:position] + str((int(number[position]) + change) % 10) + number[position + 1:]
    assert not nhs.is_valid(wrong)


@given(valid_numbers(), st.integers(0, 8))
def test_every_adjacent_transposition_is_caught(number: str, position: int) -> None:
    assume(number[position] != number[position + 1])
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2:]
    assert not nhs.is_valid(swapped)


@given(stems)
def test_check_digit_is_never_ten(stem: str) -> None:
    digit = nhs.check_digit(stem)
    assert digit is None or 0 <= digit <= 9
    assert (digit is None) == all(not reference_is_valid(stem + str(n)) for n in range(10))


@given(valid_numbers(), st.lists(st.integers(0, 10), max_size=4))
def test_spaces_people_type_are_normalised(number: str, cuts: list[int]) -> None:
    spaced = number
    for cut in sorted(cuts, reverse=True):
        spaced = spaced[:cut] + " " + spaced[cut:]
    assert nhs.normalise(spaced) == number
    assert fgm.require_valid_nhs_number(number) == number


@given(st.text(max_size=12))
def test_require_valid_nhs_number_refuses_exactly_the_invalid(value: str) -> None:
    if nhs.is_valid(value):
        assert fgm.require_valid_nhs_number(value) == value
    else:
        with pytest.raises(d.InvalidNhsNumber):
            fgm.require_valid_nhs_number(value)


# ---------------------------------------------------------------------------------------------
# R4 parsing: a resource of the model, or an ApiError (4xx); nothing else, ever
# ---------------------------------------------------------------------------------------------

FLAG_FIELDS = ["resourceType", "id", "meta", "status", "code", "subject", "period", "extension", "coding", "system",
               "value", "identifier", "url", "valueCoding", "start", "end", "contained", "text", "div", "category",
               "author", "encounter", "modifierExtension", "language", "implicitRules", "_status", "reference"]
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20), st.sampled_from(["active", "902961000000107", "2026-01-05", "Flag",
                                                                 "https://fhir.nhs.uk/Id/nhs-number", "\x00"]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(FLAG_FIELDS) | st.text(max_size=8), inner,
                                                 max_size=5)), max_leaves=30)


def _refusal_only(body: bytes, fmt: str, model: Any) -> None:
    try:
        parsed = parse_resource(body, fmt, model)
    except ApiError as error:
        assert 400 <= error.status < 500
        assert error.diagnostics  # fixed text
        return
    assert isinstance(parsed, model)


@pytest.mark.parametrize("fmt", ["json", "xml"])
@given(body=st.binary(max_size=300))
def test_parse_resource_on_any_bytes(fmt: str, body: bytes) -> None:
    _refusal_only(body, fmt, Flag)


@given(st.dictionaries(st.sampled_from(FLAG_FIELDS) | st.text(max_size=8), json_values, max_size=8),
       st.sampled_from([Flag, Communication, Parameters]))
def test_parse_resource_on_json_shaped_like_fhir(document: dict[str, Any], model: Any) -> None:
    document["resourceType"] = model.__name__
    _refusal_only(json.dumps(document).encode(), "json", model)


xml_names = st.sampled_from(FLAG_FIELDS[1:] + ["Patient", "Nope", "xi:include"]) | st.from_regex(
    r"[A-Za-z][A-Za-z0-9]{0,6}", fullmatch=True)
xml_text = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=15)


@st.composite
def xml_elements(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    name = draw(xml_names)
    if ":" in name:
        element = etree.Element("{http://www.w3.org/2001/XInclude}include", href="file:///etc/passwd")
    else:
        element = etree.Element(f"{{http://hl7.org/fhir}}{name}")
    for attribute in draw(st.lists(st.sampled_from(["value", "url", "id", "xmlns:x", "x"]), max_size=2, unique=True)):
        if ":" not in attribute:
            element.set(attribute, draw(xml_text))
    if depth < 4:
        for child in draw(st.lists(xml_elements(depth + 1), max_size=3)):
            element.append(child)
    elif draw(st.booleans()):
        element.text = draw(xml_text)
    return element


# fhir.resources' XML reader takes ~0.2 s per generated tree: fewer examples here (more under scripts/fuzz).
SLOW = settings(max_examples=max(25, settings.default.max_examples // 4))


@SLOW
@given(st.lists(xml_elements(), max_size=4), st.sampled_from([Flag, Communication, Parameters]))
def test_parse_resource_on_xml_shaped_like_fhir(children: list[etree._Element], model: Any) -> None:
    root = etree.Element(f"{{http://hl7.org/fhir}}{model.__name__}")
    for child in children:
        root.append(child)
    _refusal_only(etree.tostring(root), "xml", model)


# ---------------------------------------------------------------------------------------------
# DSTU2 parsing: a request, or a MessageError; and no diagnostics quote the message
# ---------------------------------------------------------------------------------------------

MEDIA_TYPES = ["text/xml", "application/xml+fhir", "application/json", "application/fhir+json", "text/plain", ""]
SECRET = "9434765919"  # a valid NHS number placed in the messages: never quoted back


def _message_or_refusal(body: bytes, media_type: str) -> None:
    try:
        parse_request(body, media_type)
    except MessageError as error:
        assert 400 <= error.spine_code.http_status < 500
        assert SECRET not in error.diagnostics


@given(st.binary(max_size=400), st.sampled_from(MEDIA_TYPES))
def test_parse_request_on_any_bytes(body: bytes, media_type: str) -> None:
    _message_or_refusal(body, media_type)


def _fixture_tree(name: str) -> etree._Element:
    root = etree.fromstring((FIXTURES / name).read_bytes())
    for value in root.iter():
        if value.get("value") in ("9999999999", "1234567890"):
            value.set("value", SECRET)
    return root


@given(st.sampled_from(["query-v2-request.xml", "create-request.xml", "delete-request.xml", "query-v1-request.xml"]),
       st.lists(st.tuples(st.sampled_from(["delete", "value", "duplicate", "rename", "text"]), st.integers(0, 10_000),
                          xml_text), min_size=1, max_size=4),
       st.sampled_from(["text/xml", "application/fhir+xml"]))
def test_parse_request_on_mutated_nhs_examples(name: str, mutations: list[tuple[str, int, str]],
                                               media_type: str) -> None:
    root = _fixture_tree(name)
    for action, index, text in mutations:
        elements = list(root.iter(tag=etree.Element))[1:]
        if not elements:
            break
        element = elements[index % len(elements)]
        parent = element.getparent()
        if action == "delete" and parent is not None:
            parent.remove(element)
        elif action == "value":
            element.set("value", text)
        elif action == "duplicate" and parent is not None:
            parent.append(copy.deepcopy(element))
        elif action == "rename":
            element.tag = f"{{http://hl7.org/fhir}}{FLAG_FIELDS[index % len(FLAG_FIELDS)].lstrip('_')}"
        elif action == "text":
            element.text = text
    _message_or_refusal(etree.tostring(root), media_type)


@given(st.lists(st.tuples(st.integers(0, 10_000), json_values), min_size=1, max_size=4))
def test_parse_request_on_mutated_json_query(mutations: list[tuple[int, Any]]) -> None:
    document = json.loads((FIXTURES / "query-v2-request.json").read_text().replace("9999999999", SECRET))

    def nodes(value: Any) -> list[tuple[Any, Any]]:
        found: list[tuple[Any, Any]] = []
        if isinstance(value, dict):
            for key, item in value.items():
                found += [(value, key), *nodes(item)]
        elif isinstance(value, list):
            for position, item in enumerate(value):
                found += [(value, position), *nodes(item)]
        return found

    for index, replacement in mutations:
        places = nodes(document)
        container, key = places[index % len(places)]
        container[key] = replacement
    _message_or_refusal(json.dumps(document).encode(), "application/fhir+json")


# ---------------------------------------------------------------------------------------------
# The FGM indicator rules (domain/fgm.py)
# ---------------------------------------------------------------------------------------------

days = st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31))
patients = st.builds(Patient, nhs_number=st.just("9434765919"), verified=st.booleans(),
                     birth_date=st.none() | days, gender=st.none() | st.sampled_from(Gender))
indicators = st.builds(Indicator, id=st.uuids().map(str), nhs_number=st.just("9434765919"), assessment_date=days,
                       status=st.sampled_from(IndicatorStatus), created_at=st.just("2026-01-01T00:00:00Z"),
                       created_by=st.just(Actor(user_id="u")), version=st.integers(1, 1000))


def eighteenth_birthday(born: date) -> date:
    try:
        return born.replace(year=born.year + 18)
    except ValueError:  # born on 29 February: 18 on 1 March in a common year
        return date(born.year + 18, 3, 1)


@given(patients, st.none() | days, days)
def test_create_rules_in_their_order(patient: Patient, assessed: date | None, today: date) -> None:
    expected: type[Exception] | None = None
    if not patient.verified:
        expected = d.PatientNotTraced
    elif patient.gender not in (Gender.FEMALE, Gender.UNKNOWN, Gender.OTHER):
        expected = d.GenderNotAllowed
    elif patient.birth_date is None or today >= eighteenth_birthday(patient.birth_date):
        expected = d.PatientOver18
    elif assessed is None or assessed > today:
        expected = d.AssessmentDateInvalid
    if expected is None:
        assert fgm.check_create(patient, assessed, today) == assessed
    else:
        with pytest.raises(expected):
            fgm.check_create(patient, assessed, today)
    with pytest.raises(d.PatientNotTraced):
        fgm.check_create(None, assessed, today)


@given(indicators, st.none() | patients, days)
def test_an_indicator_is_shown_only_while_active_and_the_child_is_under_18(indicator: Indicator,
                                                                           patient: Patient | None,
                                                                           today: date) -> None:
    minor = patient is not None and patient.birth_date is not None and today < eighteenth_birthday(patient.birth_date)
    assert fgm.is_shown(indicator, patient, today) == (indicator.status is IndicatorStatus.ACTIVE and minor)


@given(indicators, st.none() | st.sampled_from(RemovalReason), st.sampled_from(IndicatorStatus))
def test_remove_rules(indicator: Indicator, reason: RemovalReason | None, status: IndicatorStatus) -> None:
    if indicator.status is not IndicatorStatus.ACTIVE:
        with pytest.raises(d.IndicatorAlreadyRemoved):
            fgm.check_remove(indicator, reason, status)
    elif reason is None or status is IndicatorStatus.ACTIVE:
        with pytest.raises(d.RemovalReasonInvalid):
            fgm.check_remove(indicator, reason, status)
    else:
        assert fgm.check_remove(indicator, reason, status) is reason
        removed = indicator.removed("2026-02-01T00:00:00Z", Actor(asid="1"), reason, status)
        assert (removed.id, removed.nhs_number, removed.assessment_date) == (
            indicator.id, indicator.nhs_number, indicator.assessment_date)  # nothing is destroyed
        assert removed.version == indicator.version + 1 and removed.status is status
        assert removed.removal is not None and removed.removal.reason is reason
        with pytest.raises(d.IndicatorAlreadyRemoved):  # and it cannot be removed twice
            fgm.check_remove(removed, reason, status)


@given(st.none() | indicators)
def test_one_active_indicator(existing: Indicator | None) -> None:
    if existing is not None and existing.status is IndicatorStatus.ACTIVE:
        with pytest.raises(d.IndicatorAlreadySet):
            fgm.check_no_active(existing)
    else:
        fgm.check_no_active(existing)


@given(st.sampled_from(RemovalReason))
def test_the_status_a_removal_reason_leaves(reason: RemovalReason) -> None:
    expected = IndicatorStatus.ENTERED_IN_ERROR if reason is RemovalReason.ADDED_IN_ERROR else IndicatorStatus.INACTIVE
    assert reason.status is expected


@given(days, st.integers(-400, 400))
def test_age_around_the_eighteenth_birthday(born: date, offset: int) -> None:
    day = eighteenth_birthday(born) + timedelta(days=offset)
    patient = Patient("9434765919", True, born, Gender.FEMALE)
    assert patient.is_minor_on(day) == (offset < 0)
