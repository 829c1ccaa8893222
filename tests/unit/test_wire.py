"""The wire facts kept with an audit event: names and fixed codes only."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from safeguarding.api.wire import SCOPE_ABANDONED, SCOPE_SCENARIO, _payload, wire_facts


def _token(claims: dict[str, object]) -> bytes:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    return b"Bearer eyJhbGciOiJIUzI1NiJ9." + payload + b".c2lnbmF0dXJl"


def test_the_facts_name_headers_and_codes_never_values_a_client_chose_freely() -> None:
    scope = {"headers": [(b"traceid", b"9990000018"), (b"x-request-id", b"abc"),
                         (b"soapaction", b'"urn:nhs:names:services:clinicals-sync:FGMQuery_2_0"'),
                         (b"isunscheduledaccessevent", b"TRUE"),
                         (b"authorization", _token({"azp": "my-app", "sub": "9990000018"}))],
             SCOPE_SCENARIO: "slow-answer", SCOPE_ABANDONED: True}
    facts = wire_facts(scope)
    assert json.loads(facts.encode(True)) == {
        "ids": ["X-Request-ID", "TraceID"], "soap_action": "urn:nhs:names:services:clinicals-sync:FGMQuery_2_0",
        "unscheduled": "true", "scenario": "slow-answer", "abandoned": True, "client_id": "my-app"}
    assert "client_id" not in json.loads(facts.encode(False))  # an unverified token's claims are not recorded
    assert "9990000018" not in facts.encode(True)


def test_odd_values_are_recorded_as_other() -> None:
    scope = {"headers": [(b"soapaction", b"<script>"), (b"isunscheduledaccessevent", b"maybe"),
                         (b"authorization", _token({"azp": "a b c"}))]}
    assert json.loads(wire_facts(scope).encode(True)) == {"ids": [], "soap_action": "other", "unscheduled": "other",
                                                          "client_id": "other"}
    assert json.loads(wire_facts({"headers": [(b"authorization", b"Bearer not-a-jwt")]}).encode(True)) == {"ids": []}


def test_the_client_id_is_read_from_a_bearer_token_whatever_the_schemes_case() -> None:
    token = _token({"azp": "case-app"})
    for scheme in (b"Bearer", b"bearer", b"BEARER", b"bEaReR"):
        scope = {"headers": [(b"authorization", scheme + token[len(b"Bearer"):])]}
        assert json.loads(wire_facts(scope).encode(True))["client_id"] == "case-app"
    for other in (b"Basic" + token[len(b"Bearer"):], b"Bearer" + token[len(b"Bearer "):], b"Bearer", b"",
                  "\u0130earer ".encode("latin-1", "replace") + token[len(b"Bearer "):]):
        assert "client_id" not in json.loads(wire_facts({"headers": [(b"authorization", other)]}).encode(True))


def _payload_as_found_before(authorization: str | None) -> str | None:
    # _client_id's reading of the token before: the whole header lower-cased, the token split on dots.
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    parts = authorization[7:].strip().split(".")
    return parts[1] if len(parts) == 3 else None


_HEADER_TEXT = st.lists(st.sampled_from(["Bearer ", "bEaReR ", "BEARER", " ", ".", "..", "\t", "a", "Z", "\u00c9",
                                         "\u00df", "\u00ff", "x.y", "-_"]), max_size=12).map("".join)
_LATIN1 = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=40)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(_HEADER_TEXT, _LATIN1, st.builds(lambda a, b: a + b, _HEADER_TEXT, _LATIN1)))
def test_the_token_payload_is_found_as_before(authorization: str) -> None:
    # Headers are decoded as Latin-1, whose lower case is as long as the text: only the scheme need be lowered.
    assert _payload(authorization) == _payload_as_found_before(authorization)
    assert _payload(None) is None and _payload("") is None
