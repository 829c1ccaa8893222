"""``domain.clock.iso_instant``: the one text every stored and hashed instant is written in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from safeguarding.domain.clock import iso_instant

ZONES = st.sampled_from([timezone.utc, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))])


def test_a_utc_instant_to_the_microsecond_with_z() -> None:
    assert iso_instant(datetime(2026, 12, 7, 15, 11, 26, 123456, tzinfo=timezone.utc)) == "2026-12-07T15:11:26.123456Z"
    assert iso_instant(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "2026-01-02T03:04:05.000000Z"
    # another offset is written as the same instant in UTC
    summer = datetime(2026, 6, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert iso_instant(summer) == "2026-05-31T23:30:00.000000Z"


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES))
def test_the_same_text_as_strftime_wrote_it(moment: datetime) -> None:
    # The form the chain's existing records were written in (hashes and sorting depend on it).
    assert iso_instant(moment) == moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES))
def test_the_same_text_as_isoformat_wrote_it(moment: datetime) -> None:
    # Round 10's form (isoformat), over every year it can write.
    assert iso_instant(moment) == moment.astimezone(timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"
