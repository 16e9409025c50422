"""D5 deadlines on the statutory calendar and D10 half-month periods."""

from __future__ import annotations

import datetime as dt

import pytest

from common.workdays import CalendarNotCovered, WorkdayCalendar, YearCalendar
from services.registry.domain.workflow.deadlines import assess_lateness, due_date
from services.registry.domain.workflow.periods import ended_periods, parse_key, period_of

D = dt.date


def test_record_due_five_working_days_after_national_day_art23_d5():
    # 2025-10-01..08 holidays; 2025-10-11 (Saturday) is a make-up working day.
    assert due_date(D(2025, 9, 30), workdays=5) == D(2025, 10, 14)


def test_record_due_counts_spring_festival_make_up_saturday_art23_d5():
    # 2026-02-14 (Saturday) is a make-up working day; 02-15..23 Spring Festival.
    assert due_date(D(2026, 2, 13), workdays=5) == D(2026, 2, 27)


def test_deadline_crossing_into_uncovered_2027_is_an_explicit_error_d5():
    cal = WorkdayCalendar()
    with pytest.raises(CalendarNotCovered) as e:
        due_date(D(2026, 12, 28), workdays=5, calendar=cal)
    assert e.value.year == 2027
    assert "2027年法定工作日历尚未配置" in e.value.message_zh


def test_deadline_into_2027_uses_the_operator_calendar_when_configured_d5():
    cal = WorkdayCalendar({2027: YearCalendar(2027, holidays=frozenset({D(2027, 1, 1)}))})
    # Dec 29, 30, 31 (3 days), 2027-01-01 holiday, 01-02/03 weekend, 01-04, 01-05.
    assert due_date(D(2026, 12, 28), workdays=5, calendar=cal) == D(2027, 1, 5)


def test_late_submission_is_marked_late_with_working_and_calendar_days_d5():
    assert assess_lateness(D(2025, 10, 14), D(2025, 10, 14)).late is False
    late = assess_lateness(D(2025, 10, 14), D(2025, 10, 20))
    assert (late.late, late.working_days, late.calendar_days) == (True, 4, 6)


@pytest.mark.parametrize(
    ("day", "start", "end", "key"),
    [
        (D(2026, 3, 1), D(2026, 3, 1), D(2026, 3, 15), "2026-03-1"),
        (D(2026, 3, 15), D(2026, 3, 1), D(2026, 3, 15), "2026-03-1"),
        (D(2026, 3, 16), D(2026, 3, 16), D(2026, 3, 31), "2026-03-2"),
        (D(2026, 2, 20), D(2026, 2, 16), D(2026, 2, 28), "2026-02-2"),
        (D(2028, 2, 29), D(2028, 2, 16), D(2028, 2, 29), "2028-02-2"),
    ],
)
def test_half_month_periods_are_1st_to_15th_and_16th_to_last_day_d10(day, start, end, key):
    p = period_of(day, 15)  # bj-2022 period.first_half_last_day
    assert (p.start, p.end, p.key) == (start, end, key)
    assert parse_key(key, 15) == p


def test_ended_periods_are_listed_in_order_until_today_d10():
    first = period_of(D(2026, 1, 3), 15)
    got = ended_periods(None, D(2026, 2, 16), first=first, split=15)
    assert [p.key for p in got] == ["2026-01-1", "2026-01-2", "2026-02-1"]
    assert ended_periods(got[-1], D(2026, 2, 16), first=first, split=15) == []
