"""The requesting side: what the SMSP sends is a valid request; what it reads it reads strictly."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from safeguarding.api.dstu2.codec import MessageError, parse_request, render_response
from safeguarding.api.dstu2.codes import NO_RECORD_FOUND, RESPONSE_MESSAGE_VALIDATION_ERROR
from safeguarding.api.dstu2.messages import FoundFlag, Interaction, Organization, Practitioner, QueryRequest
from safeguarding.api.dstu2.requester import read_query_response, render_query_request

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def test_a_rendered_query_request_parses_as_the_national_service_reads_it() -> None:
    body = render_query_request(
        message_id="5f0c3a2e-1111-4c1e-9d5b-0a1b2c3d4e5f", timestamp=NOW, source_asid="200000000999",
        destination_asid="990101234567",
        practitioner=Practitioner("555021935107", "555021936108", None, None),
        organization=Organization("A81001", "Local GP"), nhs_number="9990000018")
    request = parse_request(body, "application/xml+fhir")
    assert isinstance(request, QueryRequest)
    assert request.header.message_id == "5f0c3a2e-1111-4c1e-9d5b-0a1b2c3d4e5f"
    assert (request.header.source_asid, request.header.destination_asid) == ("200000000999", "990101234567")
    assert request.header.timestamp == NOW
    assert request.practitioner == Practitioner("555021935107", "555021936108", None, None)
    assert request.organization == Organization("A81001", "Local GP")
    assert request.nhs_number == "9990000018"


def _response(**kwargs: object) -> bytes:
    return render_response(Interaction.QUERY, None, service_asid="990101234567", message_id="m-1", timestamp=NOW,
                           fmt="xml", **kwargs)  # type: ignore[arg-type]


def test_reads_a_found_and_a_not_found_response() -> None:
    found = read_query_response(_response(outcome=None, flag=FoundFlag("f-1", "9990000018", date(2026, 1, 2))),
                                "text/xml")
    assert found.flag == FoundFlag("f-1", "9990000018", date(2026, 1, 2)) and found.outcome is None
    missing = read_query_response(_response(outcome=NO_RECORD_FOUND, diagnostics="none held"), "text/xml")
    assert (missing.flag, missing.outcome, missing.diagnostics) == (None, NO_RECORD_FOUND, "none held")


@pytest.mark.parametrize("body", [b"", b"garbage", b"<html><body>502 Bad Gateway</body></html>",
                                  b'<Bundle xmlns="http://hl7.org/fhir"><type value="message"/></Bundle>',
                                  b'<!DOCTYPE x [<!ENTITY a "b">]><Bundle xmlns="http://hl7.org/fhir"/>'])
def test_unusable_responses_are_response_validation_errors(body: bytes) -> None:
    with pytest.raises(MessageError) as caught:
        read_query_response(body, "text/xml")
    assert caught.value.spine_code is RESPONSE_MESSAGE_VALIDATION_ERROR
