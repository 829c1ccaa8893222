"""The domain rules on their own: NHS numbers, ages, the indicator rules, the audit chain."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguarding.audit.chain import GENESIS, link_hash, verify
from safeguarding.domain import errors as d
from safeguarding.domain import fgm
from safeguarding.domain.audit import AuditEvent, AuditRecord
from safeguarding.domain.fgm import Actor, Indicator, IndicatorStatus, RemovalReason
from safeguarding.domain.nhs_number import check_digit, is_valid, normalise
from safeguarding.domain.patients import Gender, Patient


@pytest.mark.parametrize("number", ["9999999999", "9000000009", "9000000017", "9000000025", "9000000033",
                                    "9111231130", "9449306753", "9912003888", "9434765919", "9990000018"])
def test_valid_nhs_numbers(number: str) -> None:
    assert is_valid(number)


@pytest.mark.parametrize("number", ["1234567890", "9912003899", "999000001", "99900000180", "999000001A",
                                    " 9990000018", "９９９０００００１８", "", None, 9990000018])
def test_invalid_nhs_numbers(number: object) -> None:
    assert not is_valid(number)


def test_check_digit_of_ten_means_no_valid_number() -> None:
    # 000000006 weights to a remainder of 1: check 10, so no number with these nine digits is valid
    assert not any(is_valid("000000006" + str(d)) for d in range(10))


def _is_valid_by_check_digit(value: object) -> bool:
    """``is_valid`` as it was written before round 11: the rule by ``check_digit``."""
    if not isinstance(value, str) or len(value) != 10 or not value.isascii() or not value.isdigit():
        return False
    return check_digit(value[:9]) == int(value[9])


@settings(max_examples=1000)
@given(st.one_of(st.text(alphabet="0123456789", min_size=10, max_size=10),
                 st.text(alphabet="0123456789٣９ aA", min_size=8, max_size=12), st.text(), st.integers()))
def test_is_valid_agrees_with_check_digit(value: object) -> None:
    assert is_valid(value) == _is_valid_by_check_digit(value)


def test_is_valid_agrees_with_check_digit_on_every_check_digit() -> None:
    # every final digit of a spread of nine-digit prefixes, so each remainder (check 0, 1-9 and 10) is met
    for prefix in range(0, 10**9, 7_654_321):
        nine = f"{prefix:09d}"
        for last in "0123456789":
            assert is_valid(nine + last) == _is_valid_by_check_digit(nine + last)


def test_normalise_strips_spaces() -> None:
    assert normalise("999 000 0018") == "9990000018"


def _patient(birth: date, gender: Gender | None = Gender.FEMALE, verified: bool = True) -> Patient:
    return Patient("9990000018", verified, birth, gender)


def test_age_counts_whole_years_and_leap_days() -> None:
    leapling = _patient(date(2008, 2, 29))
    assert leapling.age_on(date(2026, 2, 28)) == 17
    assert leapling.age_on(date(2026, 3, 1)) == 18
    assert _patient(date(2008, 11, 23)).age_on(date(2026, 11, 22)) == 17
    assert _patient(date(2008, 11, 23)).age_on(date(2026, 11, 23)) == 18
    assert Patient("9990000018", True, None, Gender.FEMALE).age_on(date(2026, 1, 1)) is None


TODAY = date(2026, 11, 23)


def test_create_rules_in_order() -> None:
    minor = _patient(date(2016, 1, 1))
    assert fgm.check_create(minor, date(2026, 11, 22), TODAY) == date(2026, 11, 22)
    with pytest.raises(d.PatientNotTraced):
        fgm.check_create(None, TODAY, TODAY)
    with pytest.raises(d.PatientNotTraced):
        fgm.check_create(_patient(date(2016, 1, 1), verified=False), TODAY, TODAY)
    with pytest.raises(d.GenderNotAllowed):
        fgm.check_create(_patient(date(2016, 1, 1), Gender.MALE), TODAY, TODAY)
    with pytest.raises(d.GenderNotAllowed):
        fgm.check_create(_patient(date(2016, 1, 1), None), TODAY, TODAY)
    with pytest.raises(d.PatientOver18):
        fgm.check_create(_patient(date(2008, 11, 23)), TODAY, TODAY)
    with pytest.raises(d.PatientOver18):
        fgm.check_create(_patient(None), TODAY, TODAY)  # type: ignore[arg-type]
    with pytest.raises(d.AssessmentDateInvalid):
        fgm.check_create(minor, date(2026, 11, 24), TODAY)
    with pytest.raises(d.AssessmentDateInvalid):
        fgm.check_create(minor, None, TODAY)
    for gender in (Gender.UNKNOWN, Gender.OTHER):
        fgm.check_create(_patient(date(2016, 1, 1), gender), TODAY, TODAY)


def _indicator(status: IndicatorStatus = IndicatorStatus.ACTIVE) -> Indicator:
    return Indicator("id-1", "9990000018", date(2026, 1, 1), status, "2026-01-01T00:00:00.000000Z", Actor())


def test_remove_rules() -> None:
    active = _indicator()
    assert fgm.check_remove(active, RemovalReason.HAS_HAD_FGM, IndicatorStatus.INACTIVE) is RemovalReason.HAS_HAD_FGM
    with pytest.raises(d.RemovalReasonInvalid):
        fgm.check_remove(active, None, IndicatorStatus.INACTIVE)
    with pytest.raises(d.RemovalReasonInvalid):
        fgm.check_remove(active, RemovalReason.ADDED_IN_ERROR, IndicatorStatus.ACTIVE)
    with pytest.raises(d.IndicatorAlreadyRemoved):
        fgm.check_remove(_indicator(IndicatorStatus.INACTIVE), RemovalReason.HAS_HAD_FGM, IndicatorStatus.INACTIVE)
    removed = active.removed("2026-02-01T00:00:00.000000Z", Actor(user_id="u"), RemovalReason.ADDED_IN_ERROR,
                             IndicatorStatus.ENTERED_IN_ERROR)
    assert removed.version == 2 and removed.removal is not None and removed.removal.by.user_id == "u"
    assert active.version == 1 and active.removal is None  # immutable


def test_removal_reason_default_statuses() -> None:
    assert RemovalReason.ADDED_IN_ERROR.status is IndicatorStatus.ENTERED_IN_ERROR
    assert RemovalReason.NO_LONGER_AT_RISK.status is IndicatorStatus.INACTIVE
    assert RemovalReason.HAS_HAD_FGM.status is IndicatorStatus.INACTIVE


def test_is_shown_until_the_18th_birthday() -> None:
    child = _patient(date(2008, 11, 24))
    assert fgm.is_shown(_indicator(), child, TODAY)
    assert not fgm.is_shown(_indicator(), child, date(2026, 11, 24))
    assert not fgm.is_shown(_indicator(IndicatorStatus.INACTIVE), child, TODAY)
    assert not fgm.is_shown(_indicator(), None, TODAY)


def _chain(key: bytes, count: int) -> list[AuditRecord]:
    records, prev = [], GENESIS
    for seq in range(1, count + 1):
        event = AuditEvent(f"2026-11-23T00:00:0{seq}.000000Z", "fgm-r4", "search", 200, "OK", f"r{seq}")
        digest = link_hash(key, seq, prev, event)
        records.append(AuditRecord(seq, event, prev, digest))
        prev = digest
    return records


def test_audit_chain_verifies_and_detects_changes() -> None:
    key = b"k" * 32
    records = _chain(key, 4)
    head = (4, records[-1].hash)
    assert verify(key, records, *head).ok
    assert verify(b"x" * 32, records, *head).seq == 1  # another key cannot produce these hashes
    edited = list(records)
    edited[1] = AuditRecord(2, AuditEvent(**{**records[1].event.fields(), "status": 403}), records[1].prev_hash,
                            records[1].hash)
    assert verify(key, edited, *head).problem == "record content does not match its hash"
    assert verify(key, records[:1] + records[2:], *head).problem == "record 2 is missing"
    assert verify(key, records[:3], *head).problem == "chain ends before its recorded head (records removed)"
