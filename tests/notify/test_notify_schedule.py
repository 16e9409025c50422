"""Notify schedule: deadlines (第二十三条, D5), terms (第十三条), age (第九条（五）, D6), backoff."""

import dataclasses
import datetime as dt

import pytest

from common.ages import anniversary
from common.clock import SHANGHAI
from common.workdays import WorkdayCalendar
from services.notify.domain import messages
from services.notify.domain.delivery import (
    DeliveryState,
    IllegalTransition,
    RetryPolicy,
    SendError,
    after_failure,
    check_transition,
)
from services.notify.domain.model import AppointmentTerm, Form, FormDeadline, Kind
from services.notify.domain.schedule import (
    SchedulePolicy,
    appointment_timers,
    deadline_timers,
)

D = dt.date
CAL = WorkdayCalendar()
POLICY = SchedulePolicy()


def deadline(end, due=None, form=Form.RECORD):
    return FormDeadline(
        dispatch="dispatches/7",
        form=form,
        owners=("supervisors/42",),
        owner_name="督导组（张三）",
        dispatching_agency="agencies/08",
        plan_name="2025年第三批电工四级认定",
        supervision_end=end,
        due_date=due,
    )


def fire_days(schedule):
    return [(t.draft.kind, t.fire_at.date()) for t in schedule.timers]


def test_due_2025_10_14_reminds_on_the_make_up_saturday_and_counts_overdue_in_working_days_art23():
    dl = deadline(D(2025, 9, 30), due=D(2025, 10, 14))  # the registry's due date (D5: tests/workflow)
    sched = deadline_timers(dl, CAL, POLICY, today=D(2025, 9, 30))
    assert sched.uncovered is None
    assert fire_days(sched) == [
        (Kind.DEADLINE_REMINDER, D(2025, 10, 11)),  # make-up Saturday after National Day
        (Kind.DEADLINE_DUE_TODAY, D(2025, 10, 14)),
        (Kind.DEADLINE_OVERDUE, D(2025, 10, 15)),
        (Kind.DEADLINE_OVERDUE, D(2025, 10, 22)),
        (Kind.DEADLINE_OVERDUE, D(2025, 10, 29)),
    ]
    first = sched.timers[0]
    assert first.fire_at == dt.datetime(2025, 10, 11, 9, 0, tzinfo=SHANGHAI)
    assert first.draft.recipient == "supervisors/42"
    assert sched.timers[2].draft.recipient == "agencies/08"


def test_due_2026_02_27_overdue_notice_falls_on_the_make_up_saturday_art23():
    dl = deadline(D(2026, 2, 13), due=D(2026, 2, 27))
    sched = deadline_timers(dl, CAL, POLICY, today=D(2026, 2, 13))
    assert fire_days(sched)[:3] == [
        (Kind.DEADLINE_REMINDER, D(2026, 2, 25)),
        (Kind.DEADLINE_DUE_TODAY, D(2026, 2, 27)),
        (Kind.DEADLINE_OVERDUE, D(2026, 2, 28)),  # make-up Saturday is the first working day after
    ]


def test_reminder_names_plan_form_due_date_and_article_23():
    dl = deadline(D(2025, 9, 30), due=D(2025, 10, 14))
    body = deadline_timers(dl, CAL, POLICY, today=D(2025, 9, 30)).timers[0].draft.body
    assert "2025年第三批电工四级认定" in body
    assert "《北京市职业技能等级认定督导记录表》（附件3）" in body
    assert "2025年10月14日" in body
    assert "第二十三条" in body and "在当次督导工作结束后5天内提交委派单位" in body


def test_due_date_in_2026_with_overdue_notices_in_2027_keeps_earlier_notices_and_reports_year():
    dl = deadline(D(2026, 12, 22), due=D(2026, 12, 29))
    sched = deadline_timers(dl, CAL, POLICY, today=D(2026, 12, 22))
    assert [k for k, _ in fire_days(sched)] == [Kind.DEADLINE_REMINDER, Kind.DEADLINE_DUE_TODAY, Kind.DEADLINE_OVERDUE]
    assert sched.uncovered is not None and sched.uncovered.year == 2027


def test_2027_calendar_file_makes_notices_into_2027_schedulable(tmp_path):
    f = tmp_path / "cal.yaml"
    f.write_text("2027:\n  holidays: [2027-01-01]\n  workdays: []\n")
    cal = WorkdayCalendar.from_file(f)
    dl = deadline(D(2026, 12, 28), due=D(2027, 1, 5))
    assert deadline_timers(dl, cal, POLICY, today=D(2026, 12, 28)).uncovered is None


def test_late_event_does_not_flood_past_notices():
    dl = deadline(D(2025, 9, 30), due=D(2025, 10, 14))
    sched = deadline_timers(dl, CAL, POLICY, today=D(2025, 10, 23))
    # reminder/due-day are past; overdue #1 (10-15) collapsed into #2 (10-22, fires at once), #3 future
    assert fire_days(sched) == [(Kind.DEADLINE_OVERDUE, D(2025, 10, 22)), (Kind.DEADLINE_OVERDUE, D(2025, 10, 29))]


def test_idempotency_keys_are_business_keys_stable_across_rebuilds():
    dl = deadline(D(2025, 9, 30), due=D(2025, 10, 14))
    a = [t.key for t in deadline_timers(dl, CAL, POLICY, today=D(2025, 9, 30)).timers]
    b = [t.key for t in deadline_timers(dl, CAL, POLICY, today=D(2025, 9, 30)).timers]
    assert a == b and len(set(a)) == len(a)


def term(gender="male", born=None, start=None, end=None):
    born, start, end = born or D(1961, 3, 10), start or D(2025, 1, 1), end or D(2027, 12, 31)
    return AppointmentTerm(
        supervisor="supervisors/42",
        supervisor_name="张三",
        appointing_org="agencies/08",
        term_start=start,
        term_end=end,
        birth_date=born,
        gender=gender,
        age_limit_years=65 if gender == "male" else 60,
    )  # the rule set's D6 limits


def test_appointment_expiry_notices_90_30_7_days_before_term_end_art13():
    now = dt.datetime(2025, 1, 1, 10, tzinfo=SHANGHAI)
    timers, _ = appointment_timers(term(born=D(1970, 1, 1)), POLICY, now)
    assert [t.fire_at.date() for t in timers] == [D(2027, 10, 2), D(2027, 12, 1), D(2027, 12, 24)]
    assert all(t.draft.recipient == "agencies/08" and "第十三条" in t.draft.body for t in timers)


def test_man_reaching_66_during_term_is_announced_at_once_and_30_days_before_art9():
    now = dt.datetime(2025, 1, 1, 10, tzinfo=SHANGHAI)
    timers, immediate = appointment_timers(term(born=D(1961, 3, 10)), POLICY, now)
    assert len(immediate) == 1 and immediate[0].kind == Kind.AGE_LIMIT_IN_TERM
    assert immediate[0].due_date == D(2027, 3, 10)  # ineligible from the 66th birthday (D6)
    assert "65周岁" in immediate[0].body and "第九条" in immediate[0].body
    advance = [t for t in timers if t.draft.kind == Kind.AGE_LIMIT_IN_TERM]
    assert [t.fire_at.date() for t in advance] == [D(2027, 2, 8)]


def test_woman_turning_61_after_term_end_gets_no_age_notice_art9():
    now = dt.datetime(2025, 1, 1, 10, tzinfo=SHANGHAI)
    _, immediate = appointment_timers(term(gender="female", born=D(1967, 1, 1)), POLICY, now)
    assert immediate == []  # 61st birthday 2028-01-01 is after the term end 2027-12-31


def test_without_the_age_limit_in_the_event_no_age_notice_is_guessed_art9():
    now = dt.datetime(2025, 1, 1, 10, tzinfo=SHANGHAI)
    timers, immediate = appointment_timers(dataclasses.replace(term(), age_limit_years=None), POLICY, now)
    assert immediate == [] and not [t for t in timers if t.draft.kind == Kind.AGE_LIMIT_IN_TERM]


def test_leap_day_birthday_falls_on_1_march_in_common_years_d6():
    assert anniversary(D(1960, 2, 29), 66) == D(2026, 3, 1)
    assert anniversary(D(1960, 2, 29), 64) == D(2024, 2, 29)


def test_retry_policy_backs_off_then_dead_letters_with_reason():
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, factor=2.0, max_delay=10)
    err = SendError("SMTP_UNAVAILABLE", "[Errno 111] Connection refused")
    assert after_failure(1, err, policy).retry_in == 1.0
    assert after_failure(2, err, policy).retry_in == 2.0
    last = after_failure(3, err, policy)
    assert last.state == DeliveryState.DEAD_LETTERED and last.reason.startswith("SMTP_UNAVAILABLE")
    permanent = after_failure(1, SendError("SMTP_RECIPIENT_REFUSED", "550", permanent=True), policy)
    assert permanent.state == DeliveryState.DEAD_LETTERED


def test_delivery_state_machine_rejects_redelivery_of_delivered():
    assert check_transition("pending", "sending") == DeliveryState.SENDING
    assert check_transition("dead_lettered", "pending") == DeliveryState.PENDING
    with pytest.raises(IllegalTransition):
        check_transition("delivered", "sending")


def test_immediate_report_goes_to_city_centre_art24():
    d = messages.immediate_report(
        report="cases/3",
        reporting_agency="agencies/08",
        reporting_agency_name="海淀区职业技能鉴定管理机构",
        summary="弄虚作假",
        institution_name="某评价机构",
        articles=("第二十六条",),
    )
    assert d.recipient == "agencies/A" and d.articles == ("第二十四条", "第二十六条")
    assert "应随时向市鉴定管理中心报告" in d.body


def test_immediate_report_names_the_district_agency_and_ends_with_one_full_stop():
    d = messages.immediate_report(
        report="cases/5",
        reporting_agency="agencies/08",
        reporting_agency_name="",
        summary="严重违规情况报告（第二十四条）：某机构弄虚作假。",
        institution_name="某机构",
        articles=("第二十六条（四）",),
    )
    assert d.body.startswith("海淀区鉴定管理机构报告严重违规情况（被督导机构：某机构）：")
    assert "。。" not in d.body
