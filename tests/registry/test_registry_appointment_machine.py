"""The appointment state machine (domain/appointments.py) and the badge rules (domain/badges.py), pure:
every transition and every refusal, with the rule id and the article it cites."""

from __future__ import annotations

import datetime as dt

import pytest

from services.registry.domain import appointments as machine
from services.registry.domain import badges
from services.registry.domain.problems import Conflict, ProblemsError, Refused
from services.registry.domain.supervisors import Status

D = dt.date
TODAY = D(2026, 11, 28)
TERM = dict(term_years=3, max_future_days=180)
START, END = D(2025, 1, 1), D(2027, 12, 31)


def state(status: Status, start: dt.date = START, end: dt.date = END) -> machine.AppointmentState:
    return machine.AppointmentState("appointments/7", status, 1, start, end)


def refused(fn, *args, **kw) -> Refused:
    with pytest.raises(Refused) as e:
        fn(*args, **kw)
    return e.value


def problems(fn, *args, **kw) -> list[tuple[str, str]]:
    with pytest.raises(ProblemsError) as e:
        fn(*args, **kw)
    return [(p.field, p.reason) for p in e.value.problems]


# ---------------------------------------------------------------------------------------------- appoint


@pytest.mark.parametrize("status", [Status.NOT_APPOINTED, Status.EXPIRED])
def test_appoint_gives_a_three_year_term_ending_the_day_before_the_anniversary_art10_art13(status):
    term = machine.appoint("supervisors/1", status, start=D(2026, 6, 1), today=TODAY, **TERM)
    assert (term.number, term.start, term.end) == (1, D(2026, 6, 1), D(2029, 5, 31))


@pytest.mark.parametrize(
    ("status", "reason", "rule", "article"),
    [(Status.ACTIVE, "ALREADY_APPOINTED", "registry.appointment.single-active", "第十三条"),
     (Status.SUSPENDED, "ALREADY_APPOINTED", "registry.appointment.single-active", "第十三条"),
     (Status.REVOKED, "QUALIFICATION_REVOKED", "registry.appointment.revoked", "第二十七条")],
)  # fmt: skip
def test_appoint_is_refused_while_in_a_term_art13_or_after_revocation_art27(status, reason, rule, article):
    e = refused(machine.appoint, "supervisors/1", status, start=TODAY, today=TODAY, **TERM)
    assert (e.reason, e.rule, e.subject) == (reason, rule, "supervisors/1") and article in e.description


def test_a_start_whose_term_is_over_or_too_far_ahead_is_invalid_art13():
    assert problems(machine.check_start, D(2020, 1, 1), TODAY, **TERM) == [("start_date", "TERM_ALREADY_ENDED")]
    too_far = TODAY + dt.timedelta(days=181)
    assert problems(machine.check_start, too_far, TODAY, **TERM) == [("start_date", "START_TOO_FAR")]
    assert machine.check_start(TODAY + dt.timedelta(days=180), TODAY, **TERM).number == 1


# ---------------------------------------------------------------------------------------------- renew


def test_an_active_appointment_renews_early_without_a_status_change_art13():
    term, change = machine.renew(state(Status.ACTIVE), start=D(2026, 12, 1), today=TODAY, **TERM)
    assert (term.number, term.start, term.end) == (2, D(2026, 12, 1), D(2029, 11, 30)) and change is None


def test_an_expired_appointment_renews_back_to_active_art13():
    _, change = machine.renew(state(Status.EXPIRED, end=D(2026, 1, 1)), start=TODAY, today=TODAY, **TERM)
    assert change == machine.Change(Status.EXPIRED, Status.ACTIVE, reason="续聘")


@pytest.mark.parametrize(
    ("status", "reason", "rule"),
    [(Status.SUSPENDED, "APPOINTMENT_SUSPENDED", "registry.renewal.not-suspended"),
     (Status.REVOKED, "QUALIFICATION_REVOKED", "registry.renewal.not-revoked")],
)  # fmt: skip
def test_renewal_is_refused_when_suspended_or_revoked_art27(status, reason, rule):
    e = refused(machine.renew, state(status), start=TODAY, today=TODAY, **TERM)
    assert (e.reason, e.rule, e.subject) == (reason, rule, "appointments/7") and "第二十七条" in e.description


def test_a_renewal_must_start_after_the_current_term_started_art13():
    assert problems(machine.renew, state(Status.ACTIVE), start=D(2025, 1, 1), today=TODAY, **TERM) == [
        ("start_date", "RENEWAL_START")
    ]


# ---------------------------------------------------------------------------------------------- 第二十七条


def test_suspend_an_active_appointment_records_the_decision_art27():
    change = machine.suspend(state(Status.ACTIVE), reason="未认真履行职责", article="第二十七条")
    assert change == machine.Change(Status.ACTIVE, Status.SUSPENDED, "未认真履行职责", "第二十七条", decision=True)


@pytest.mark.parametrize("status", [Status.SUSPENDED, Status.EXPIRED, Status.REVOKED])
def test_only_an_active_appointment_can_be_suspended_art27(status):
    e = refused(machine.suspend, state(status), reason="r", article="第二十七条")
    assert (e.reason, e.rule) == ("NOT_ACTIVE", "registry.suspend.active-only") and "第二十七条" in e.description


def test_a_decision_needs_its_reason_and_article_art27():
    assert problems(machine.suspend, state(Status.ACTIVE), reason=" ", article="") == [
        ("reason", "REASON_REQUIRED"), ("article", "REASON_REQUIRED"),
    ]  # fmt: skip
    assert problems(machine.revoke, state(Status.ACTIVE), reason="r", article=" ") == [("article", "REASON_REQUIRED")]
    assert problems(machine.reinstate, state(Status.SUSPENDED), reason="", today=TODAY) == [
        ("reason", "REASON_REQUIRED")
    ]


def test_reinstate_returns_to_active_or_to_expired_when_the_term_ended_meanwhile_art13():
    assert machine.reinstate(state(Status.SUSPENDED), reason="整改完毕", today=TODAY).to_status == Status.ACTIVE
    ended = state(Status.SUSPENDED, end=D(2026, 11, 27))
    assert machine.reinstate(ended, reason="整改完毕", today=TODAY).to_status == Status.EXPIRED


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.EXPIRED, Status.REVOKED])
def test_only_a_suspended_appointment_can_be_reinstated(status):
    e = refused(machine.reinstate, state(status), reason="r", today=TODAY)
    assert (e.reason, e.rule) == ("NOT_SUSPENDED", "registry.reinstate.suspended-only")


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.SUSPENDED, Status.EXPIRED])
def test_revoke_from_any_state_but_revoked_art27(status):
    change = machine.revoke(state(status), reason="利用职务谋取私利", article="第二十七条")
    assert (change.from_status, change.to_status, change.decision) == (status, Status.REVOKED, True)


def test_revocation_is_final_art27():
    e = refused(machine.revoke, state(Status.REVOKED), reason="r", article="第二十七条")
    assert (e.reason, e.rule) == ("ALREADY_REVOKED", "registry.revoke.once") and "第二十七条" in e.description


# ---------------------------------------------------------------------------------------------- expiry


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.SUSPENDED])
def test_expiry_on_the_day_after_the_last_day_of_the_term_art13(status):
    s = state(status, end=D(2026, 12, 31))
    assert machine.expire(s, as_of=D(2026, 12, 31)) is None
    change = machine.expire(s, as_of=D(2027, 1, 1))
    assert change == machine.Change(status, Status.EXPIRED, "聘期届满自动解聘", "第十三条")


@pytest.mark.parametrize("status", [Status.EXPIRED, Status.REVOKED])
def test_expired_or_revoked_appointments_do_not_expire_again(status):
    assert machine.expire(state(status, end=D(2020, 1, 1)), as_of=TODAY) is None


# ---------------------------------------------------------------------------------------------- badges


def test_only_an_active_appointment_within_its_term_gets_a_badge_art11_art12_art13():
    badges.check_issuable("appointments/7", Status.ACTIVE, D(2027, 1, 1), TODAY)
    e = refused(badges.check_issuable, "appointments/7", Status.SUSPENDED, D(2027, 1, 1), TODAY)
    assert e.reason == "APPOINTMENT_NOT_ACTIVE" and "第十一条" in e.description
    e = refused(badges.check_issuable, "appointments/7", Status.ACTIVE, D(2026, 11, 27), TODAY)
    assert e.reason == "TERM_ENDED" and "第十三条" in e.description


def test_one_badge_per_term_unless_replaced_and_explicit_serials_only_for_internals_d1():
    with pytest.raises(Conflict) as e:
        badges.refuse_if_issued(["R11260801"], replace_existing=False)
    assert (e.value.reason, e.value.resource) == ("BADGE_ALREADY_ISSUED", "badges/R11260801")
    badges.refuse_if_issued(["R11260801"], replace_existing=True)
    assert problems(badges.check_explicit_serial, "external", 5) == [("explicit_serial", "EXPLICIT_SERIAL_EXTERNAL")]
    assert problems(badges.check_explicit_serial, "internal", -1) == [("explicit_serial", "SERIAL_OUT_OF_RANGE")]
    badges.check_explicit_serial("internal", 5)
    assert refused(badges.check_revocable, "R11260801", True).reason == "BADGE_ALREADY_REVOKED"


@pytest.mark.parametrize(
    ("revoked", "appointment", "as_of", "status"),
    [(True, "active", TODAY, "revoked"), (False, "revoked", TODAY, "revoked"),
     (False, "suspended", TODAY, "suspended"), (False, "expired", TODAY, "expired"),
     (False, "active", D(2028, 1, 1), "expired"), (False, "active", TODAY, "active")],
)  # fmt: skip
def test_door_status_revoked_before_suspended_before_expired_art17(revoked, appointment, as_of, status):
    assert badges.door_status(revoked, D(2027, 12, 31), appointment, as_of) == status
