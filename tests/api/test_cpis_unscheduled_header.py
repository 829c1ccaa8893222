"""The unscheduled-access header under both names: IsUnscheduledAccessEvent, and IsUnscheduledEvent, the
spelling the CP-IS IG's header page gives once. Either records (true) or not (false); both given must agree."""

from __future__ import annotations

import pytest

from ..support import NHS_SYSTEM, Server, assert_outcome
from .cpis_helpers import SBC_ASID, clinician, give_plan, pending_for
from .test_cpis_access_history import accesses

INVALID_HEAD = "Missing or invalid head parameter"


def _child_with_plan(server: Server) -> str:
    child = server.add_patient()
    give_plan(server, child)
    return child


def _search(server: Server, child: str, headers: list[tuple[str, str]]) -> tuple[int, str]:
    with server.client() as client:
        response = client.get(f"{server.cpis}/CareTeam", params={"patient:identifier": f"{NHS_SYSTEM}|{child}"},
                              headers=[*clinician(server).items(), *headers])
    return response.status_code, response.text


@pytest.mark.parametrize(("headers", "recorded"), [
    ([("IsUnscheduledEvent", "false")], 0),  # a scheduled-care system using the IG's other spelling
    ([("IsUnscheduledEvent", "FALSE")], 0),
    ([("IsUnscheduledEvent", "true")], 1),
    ([("IsUnscheduledAccessEvent", "false"), ("IsUnscheduledEvent", "false")], 0),
    ([("IsUnscheduledAccessEvent", "true"), ("IsUnscheduledEvent", "True")], 1),
])
def test_the_alias_is_read_as_the_header(server: Server, headers: list[tuple[str, str]], recorded: int) -> None:
    child = _child_with_plan(server)
    status, text = _search(server, child, headers)
    assert status == 200, text
    assert len(accesses(server, child)) == recorded
    assert len(pending_for(server, SBC_ASID, child)) == recorded


@pytest.mark.parametrize("headers", [
    [("IsUnscheduledAccessEvent", "true"), ("IsUnscheduledEvent", "false")],
    [("IsUnscheduledAccessEvent", "false"), ("IsUnscheduledEvent", "true")],
    [("IsUnscheduledEvent", "maybe")],
    [("IsUnscheduledEvent", "false"), ("IsUnscheduledEvent", "false")],
])
def test_disagreeing_or_invalid_values_are_the_invalid_head_parameter_row(server: Server,
                                                                         headers: list[tuple[str, str]]) -> None:
    child = _child_with_plan(server)
    with server.client() as client:
        for resource in ("CareTeam", "AuditEvent"):
            response = client.get(f"{server.cpis}/{resource}", params={"patient": child},
                                  headers=[*clinician(server).items(), *headers])
            assert_outcome(response, 400, "PRECONDITION_FAILED", INVALID_HEAD)
    assert accesses(server, child) == []
    assert pending_for(server, SBC_ASID, child) == []
