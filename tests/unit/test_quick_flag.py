"""quick_facts: what the API reads from a plain FGM Flag without building the model is what it reads
from the validated model, and anything it does not recognise (or that FHIR refuses) is left to validation."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fhir.resources.R4B.flag import Flag
from pydantic import ValidationError

from safeguarding.api.r4 import flag as mapping
from safeguarding.domain.fgm import RemovalReason

CODE = {"coding": [{"system": "http://snomed.info/sct", "code": "902961000000107",
                    "display": "Family history of FGM (female genital mutilation)"}], "text": "FGM"}
SUBJECT = {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}}
CREATE = {"resourceType": "Flag", "status": "active", "code": CODE, "subject": SUBJECT,
          "period": {"start": "2026-11-28"}}
REMOVE = {"resourceType": "Flag", "id": "0b0f8c4e-4a54-4c8c-9d58-1c2d3e4f5a6b", "status": "entered-in-error",
          "extension": [{"url": mapping.REMOVAL_EXTENSION,
                         "valueCoding": {"system": mapping.REMOVAL_SYSTEM, "code": "0"}}],
          "code": CODE, "subject": SUBJECT, "period": {"start": "2026-11-28"}}

ODD_VALUES: list[Any] = ["", " ", " x", "x ", "a b", "a  b", "a\tb", "x" * 65, "a_b", "2026-02-30", "0000-01-01",
                         "2026-11-28T10:00:00Z", "2026", "bogus", 0, 1.5, True, None, [], {}, ["x"], {"x": 1}]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _set(document: dict[str, Any], path: tuple[Any, ...], value: Any, *, delete: bool = False) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    parent: Any = changed
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


def variants() -> Iterator[dict[str, Any]]:
    for document in (CREATE, REMOVE):
        yield document
        for path in list(_paths(document))[1:]:
            yield _set(document, path, None, delete=True)
            for value in ODD_VALUES:
                yield _set(document, path, value)
            if isinstance(path[-1], str):  # an element this service does not read, beside this one
                yield _set(document, (*path[:-1], "unknownElement"), "x")
                yield _set(document, (*path[:-1], "fhir_comments"), ["x"])
        yield {**document, "extension": [*document.get("extension", []), *REMOVE["extension"]]}
        yield {**document, "code": {"coding": CODE["coding"] * 5}}


def _validated(document: dict[str, Any]) -> Flag | None:
    try:
        return Flag.model_validate(document)
    except (ValidationError, ValueError, TypeError):
        return None


def test_the_plain_flags_clients_send_are_recognised() -> None:
    plain_code = {"coding": [{"system": "http://snomed.info/sct", "code": "902961000000107"}]}
    for document in (CREATE, REMOVE, {**CREATE, "code": plain_code}):
        quick = mapping.quick_facts(copy.deepcopy(document))
        assert quick is not None
        assert quick == mapping.facts(Flag.model_validate(document))
    assert mapping.quick_facts(copy.deepcopy(REMOVE)) == mapping.FlagFacts(
        id="0b0f8c4e-4a54-4c8c-9d58-1c2d3e4f5a6b", status="entered-in-error", nhs_number="9434765919",
        fgm_code=True, assessment_date=date(2026, 11, 28), removal_extensions=1,
        removal_reason=RemovalReason.ADDED_IN_ERROR)


def test_whatever_it_reads_validation_reads_and_it_never_accepts_what_fhir_refuses() -> None:
    recognised = refused_by_both = 0
    for document in variants():
        quick = mapping.quick_facts(copy.deepcopy(document))
        validated = _validated(document)
        if quick is None:
            refused_by_both += validated is None
            continue
        recognised += 1
        assert validated is not None, document
        assert quick == mapping.facts(validated), document
    assert recognised >= 100 and refused_by_both >= 400  # the variants exercise both sides


@pytest.mark.parametrize("document", [
    {**CREATE, "status": "bogus"},  # FHIR's model accepts any status text; left to the handler's own check
    {**CREATE, "period": {"start": "2026-11-28T10:00:00Z"}},
    {**CREATE, "subject": {"reference": "Patient/1", **SUBJECT}},
    {**REMOVE, "extension": [{"url": mapping.LEGACY_REMOVAL_EXTENSION, "valueCodeableConcept": {
        "coding": [{"system": mapping.LEGACY_REMOVAL_SYSTEM, "code": "0"}]}}]},
])
def test_what_it_does_not_recognise_is_left_to_validation(document: dict[str, Any]) -> None:
    assert mapping.quick_facts(document) is None
