"""``api.query.Query`` parses a query string exactly as Starlette's ``QueryParams`` does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from safeguarding.api.query import Query

# Raw query bytes built from the characters that matter to the parser, plus anything else.
_PIECES = st.sampled_from(["&", "=", "+", "%", "%7C", "%7c", "%2", "%zz", "%C3%A9", "%FF", "|", ";", "a", "b",
                           "patient:identifier", "_format", " ", "\u00e9", "\x00"])
RAW = st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=12).map(lambda parts: "".join(parts).encode("utf-8"))
NAMES = ["patient:identifier", "_format", "a", "b", "", " ", "a b", "|", "\u00e9", "\ufffd", "_count"]


@settings(max_examples=1500, deadline=None)
@given(RAW)
def test_get_and_getlist_agree_with_starlette(raw: bytes) -> None:
    ours, theirs = Query(raw), QueryParams(raw)
    for name in {*NAMES, *theirs.keys()}:
        assert ours.getlist(name) == theirs.getlist(name), (raw, name)
        assert ours.get(name) == theirs.get(name), (raw, name)


def test_the_search_parameter_and_its_edge_cases() -> None:
    query = Query(b"patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C9990000018&_format=xml&_format=json")
    assert query.getlist("patient:identifier") == ["https://fhir.nhs.uk/Id/nhs-number|9990000018"]
    assert query.get("_format") == "json"  # the last of a repeated name, as QueryParams
    assert query.getlist("_format") == ["xml", "json"]
    assert query.get("missing") is None
    assert query.getlist("missing") == []
    assert Query(b"a&b=&&c=1+2%2B3").getlist("a") == [""]
    assert Query(b"a&b=&&c=1+2%2B3").get("c") == "1 2+3"
    assert Query(b"x=%FF").get("x") == "\ufffd"  # invalid UTF-8 replaced, never an error
    values = Query(b"x=1").getlist("x")
    values.append("2")
    assert Query(b"x=1").getlist("x") == ["1"]  # a copy: the caller cannot change the request
