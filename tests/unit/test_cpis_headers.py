"""``declared_unscheduled`` (one pass over the raw headers) answers as it did through ``Headers.getlist``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from safeguarding.api.errors import ApiError
from safeguarding.api.pipeline import ApiRequest
from safeguarding.api.query import Query
from safeguarding.api.r4.cpis import UNSCHEDULED_HEADERS, declared_unscheduled


def _as_first_written(headers: Headers) -> bool | str | None:
    declared: set[bool] = set()
    for name in UNSCHEDULED_HEADERS:
        values = headers.getlist(name)
        if not values:
            continue
        value = values[0].strip().lower()
        if len(values) > 1 or value not in ("true", "false"):
            return "refused"
        declared.add(value == "true")
    if len(declared) > 1:
        return "refused"
    return declared.pop() if declared else None


def _now(headers: Headers) -> bool | str | None:
    request = ApiRequest("GET", {}, Query(b""), headers, b"", "https://x/cpis/FHIR/R4")
    try:
        return declared_unscheduled(request)
    except ApiError as error:
        assert error.details_code == "PRECONDITION_FAILED"
        return "refused"


_NAMES = st.sampled_from([b"isunscheduledaccessevent", b"isunscheduledevent", b"host", b"authorization"])
_VALUES = st.sampled_from([b"true", b"false", b" TRUE ", b"False", b"yes", b"", b"tr\xfce"])


@settings(max_examples=1500)
@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=5))
def test_the_same_answer_as_through_getlist(raw: list[tuple[bytes, bytes]]) -> None:
    headers = Headers(raw=raw)
    assert _now(headers) == _as_first_written(headers)
