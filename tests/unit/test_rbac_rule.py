"""The user side of ``authorise`` and ``User.holds``, pinned to the rule as first written (``activity.value in
activities``, any activity the operation needs) for every operation and every set of activity codes."""

from __future__ import annotations

from itertools import combinations

import pytest

from safeguarding.domain.caller import Activity, Caller, User
from safeguarding.security.errors import AccessDenied
from safeguarding.security.rbac import _USER_ACTIVITIES, Operation, authorise

CODES = [activity.value for activity in Activity] + ["B9999", "b0370", ""]


def _allowed(caller: Caller, operation: Operation) -> bool:
    try:
        authorise(caller, operation)
    except AccessDenied:
        return False
    return True


@pytest.mark.parametrize("operation", list(_USER_ACTIVITIES))
def test_a_user_is_allowed_exactly_when_the_role_holds_an_activity_the_operation_needs(operation: Operation) -> None:
    for size in range(len(CODES) + 1):
        for held in combinations(CODES, size):
            user = User("555000000001", "555100000001", "RR8", activities=frozenset(held))
            expected = any(activity.value in user.activities for activity in _USER_ACTIVITIES[operation])
            assert _allowed(Caller(user=user), operation) is expected
            for activity in Activity:
                assert user.holds(activity) is (activity.value in held)
