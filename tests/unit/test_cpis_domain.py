"""The CP-IS domain rules on their own: plan types, activity, upload checks and upserts, access recording."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from safeguarding.api.r4.cpis import ENTRY_ERRORS
from safeguarding.domain import cpis
from safeguarding.domain import errors as d
from safeguarding.domain.caller import User
from safeguarding.domain.cpis import (
    Access,
    Author,
    AuthorityContact,
    Change,
    FileCode,
    Plan,
    PlanAction,
    PlanKey,
    PlanRecord,
    PlanType,
    Provenance,
    RecordCode,
)
from safeguarding.domain.patients import Gender, Patient, SecurityLabel

TODAY = date(2026, 3, 10)
CHILD = "9990000123"
CONTACT = AuthorityContact("Sandbox City Council", "01134960001", "07700900001")
KEY = PlanKey("SBC01", CHILD, PlanType.CPP)
CHANGED = Provenance("2026-03-10T09:00:00.000000Z", "300000000101", "req-1")


def patient(**overrides: object) -> Patient:
    values: dict[str, object] = {"nhs_number": CHILD, "verified": True, "birth_date": date(2020, 1, 1),
                                 "gender": Gender.MALE}
    values.update(overrides)
    return Patient(**values)  # type: ignore[arg-type]


def record(**overrides: object) -> PlanRecord:
    values: dict[str, object] = {"nhs_number": CHILD, "plan_type": PlanType.CPP, "action": PlanAction.SET,
                                 "start": TODAY - timedelta(days=10), "end": None, "contact": CONTACT}
    values.update(overrides)
    return PlanRecord(**values)  # type: ignore[arg-type]


def plan(**overrides: object) -> Plan:
    values: dict[str, object] = {"id": "p1", "key": KEY, "start": TODAY - timedelta(days=10), "end": None,
                                 "contact": CONTACT, "created_at": CHANGED.at, "changed": CHANGED}
    values.update(overrides)
    return Plan(**values)  # type: ignore[arg-type]


def test_plan_types_and_their_snomed_codes() -> None:
    assert [(t.value, t.snomed, t.display) for t in PlanType] == [
        ("CPP", "342191000000101", "Subject to child protection plan"),
        ("LAC", "764841000000100", "Looked after child"),
        ("UCP", "818901000000100", "Unborn child subject to child protection plan"),
    ]
    assert PlanType.for_snomed("764841000000100") is PlanType.LAC
    assert PlanType.for_snomed("902961000000107") is None


def test_a_plan_is_active_with_no_end_date_or_one_today_or_later() -> None:
    assert plan().is_active(TODAY)
    assert plan(end=TODAY).is_active(TODAY)
    assert not plan(end=TODAY - timedelta(days=1)).is_active(TODAY)
    assert not plan(withdrawn_at=CHANGED.at).is_active(TODAY)
    active = cpis.active_plans([plan(id="b", key=replace(KEY, plan_type=PlanType.LAC)), plan(id="a"),
                                plan(id="c", end=TODAY - timedelta(days=1))], TODAY)
    assert [p.id for p in active] == ["a", "b"]  # type order: CPP before LAC


def test_active_plans_in_type_then_start_then_authority_order_and_their_authorities_once() -> None:
    earlier = TODAY - timedelta(days=20)
    plans = [plan(id="ucp", key=replace(KEY, authority_ods="SBC02", plan_type=PlanType.UCP)),
             plan(id="lac", key=replace(KEY, authority_ods="SBC03", plan_type=PlanType.LAC)),
             plan(id="cpp-b", key=replace(KEY, authority_ods="SBC02")),
             plan(id="cpp-a", key=replace(KEY, authority_ods="SBC09"), start=earlier),
             plan(id="cpp-c", key=replace(KEY, authority_ods="SBC01")),
             plan(id="ended", key=replace(KEY, authority_ods="SBC00", plan_type=PlanType.LAC),
                  end=TODAY - timedelta(days=1))]
    active = cpis.active_plans(plans, TODAY)
    assert [p.id for p in active] == ["cpp-a", "cpp-c", "cpp-b", "lac", "ucp"]
    assert cpis.authorities_of(active) == ["SBC01", "SBC02", "SBC03", "SBC09"]
    assert cpis.responsible_authorities(plans, TODAY) == ["SBC01", "SBC02", "SBC03", "SBC09"]


@pytest.mark.parametrize(("subject", "error"), [
    (None, d.PatientNotFound),
    (patient(superseded_by="9990000204", verified=False), d.NhsNumberSuperseded),
    (patient(verified=False), d.NhsNumberNotVerified),
    (patient(security=SecurityLabel.RESTRICTED), d.SensitiveRecord),
    (patient(security=SecurityLabel.VERY_RESTRICTED), d.SensitiveRecord),
])
def test_demographic_checks(subject: Patient | None, error: type[d.DomainError]) -> None:
    with pytest.raises(error):
        cpis.check_subject(CHILD, subject)


def test_an_invalid_number_is_reported_before_demographics() -> None:
    with pytest.raises(d.InvalidNhsNumber):
        cpis.check_subject("9990000124", patient())
    cpis.check_subject(CHILD, patient())


def test_another_authority_is_checked_first() -> None:
    with pytest.raises(d.PlanOfAnotherAuthority):
        cpis.check_record(record(nhs_number="123", named_authorities=frozenset({"TCC02"})), "SBC01", None, TODAY)
    cpis.check_record(record(named_authorities=frozenset({"SBC01"})), "SBC01", patient(), TODAY)


@pytest.mark.parametrize(("change", "rule"), [
    ({"start": None}, cpis.START_REQUIRED),
    ({"start": TODAY + timedelta(days=1)}, cpis.START_IN_FUTURE),
    ({"end": TODAY - timedelta(days=11)}, cpis.END_BEFORE_START),
    ({"plan_type": PlanType.UCP}, cpis.UCP_END_REQUIRED),
    ({"action": PlanAction.END}, cpis.END_REQUIRED),
    ({"action": PlanAction.END, "end": TODAY + timedelta(days=1)}, cpis.END_AFTER_TODAY),
    ({"end": TODAY - timedelta(days=1)}, cpis.ACTIVE_BUT_ENDED),
    ({"contact": None}, cpis.CONTACT_REQUIRED),
    ({"contact": AuthorityContact("Name only")}, cpis.CONTACT_REQUIRED),
    ({"contact": AuthorityContact("", "01134960001")}, cpis.CONTACT_REQUIRED),
])
def test_plan_rules(change: dict[str, object], rule: str) -> None:
    with pytest.raises(d.PlanInvalid) as refused:
        cpis.check_record(record(**change), "SBC01", patient(), TODAY)
    assert refused.value.rule == rule


def test_withdrawal_needs_no_dates_or_contact() -> None:
    cpis.check_record(record(action=PlanAction.WITHDRAW, start=None, contact=None), "SBC01", patient(), TODAY)


def test_apply_is_an_upsert_by_key() -> None:
    created = cpis.apply(None, record(), KEY, "new-id", CHANGED)
    assert created.change is Change.CREATED and created.plan.id == "new-id" and created.plan.version == 1
    same = cpis.apply(created.plan, record(), KEY, "other-id", replace(CHANGED, at="later"))
    assert same.change is Change.UNCHANGED and same.plan == created.plan
    ended = cpis.apply(created.plan, record(action=PlanAction.END, end=TODAY), KEY, "x", CHANGED)
    assert ended.change is Change.UPDATED and ended.plan.end == TODAY and ended.plan.version == 2
    assert ended.plan.id == "new-id"
    withdrawn = cpis.apply(ended.plan, record(action=PlanAction.WITHDRAW), KEY, "x", CHANGED)
    assert withdrawn.change is Change.WITHDRAWN and withdrawn.plan.withdrawn and withdrawn.plan.version == 3
    assert cpis.apply(withdrawn.plan, record(action=PlanAction.WITHDRAW), KEY, "x", CHANGED).change is Change.UNCHANGED
    again = cpis.apply(withdrawn.plan, record(), KEY, "x", CHANGED)
    assert again.change is Change.UPDATED and not again.plan.withdrawn and again.plan.version == 4
    with pytest.raises(d.PlanNotFound):
        cpis.apply(None, record(action=PlanAction.WITHDRAW), KEY, "x", CHANGED)


def test_file_and_record_codes() -> None:
    assert cpis.file_code(3, 0) is FileCode.SUCCESS
    assert cpis.file_code(2, 1) is FileCode.PARTIAL
    assert cpis.file_code(0, 2) is FileCode.FAILED
    assert cpis.record_code(None) is RecordCode.SUCCESS
    assert cpis.record_code(d.PatientNotFound()) is RecordCode.NO_MATCH
    assert cpis.record_code(d.PlanInvalid(cpis.START_REQUIRED)) is RecordCode.UNSUCCESSFUL


def test_the_r4_entry_table_gives_each_error_its_domain_record_code() -> None:
    assert set(ENTRY_ERRORS) == set(cpis.RECORD_CODES)
    for kind, refusal in ENTRY_ERRORS.items():
        assert refusal.details_code == cpis.RECORD_CODES[kind].value, kind


def _user(*activities: str) -> User:
    return User(user_id="u", role_profile_id="r", org_code="RR8", activities=frozenset(activities))


@pytest.mark.parametrize(("declared", "activities", "records"), [
    (None, ("B0107",), True),
    (True, ("B0107",), True),
    (False, ("B0107",), False),
    (True, ("B0170",), False),
    (None, ("B0170",), False),
    (True, ("B0107", "B0170"), True),
])
def test_who_records_an_access(declared: bool | None, activities: tuple[str, ...], records: bool) -> None:
    assert cpis.records_access(declared, _user(*activities)) is records


def test_repeats_within_24_hours_are_listed_once() -> None:
    first = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)
    assert cpis.is_listed(first, None)
    assert not cpis.is_listed(first + timedelta(hours=23, minutes=59), first)
    assert cpis.is_listed(first + timedelta(hours=24), first)


def test_author_from_the_callers_token() -> None:
    user = User(user_id="u1", role_profile_id="r1", org_code="RR8", role_code="S8000:G8000:R8000",
                role_name="Nurse", org_name="Hospital", name="Dr A", activities=frozenset({"B0107"}))
    assert Author.of(user) == Author("u1", "r1", "RR8", "S8000:G8000:R8000", "Nurse", "Hospital", "Dr A")
    access = Access("a1", CHILD, CHANGED.at, Author.of(user))
    assert access.listed
