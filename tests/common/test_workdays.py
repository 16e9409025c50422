"""Statutory working-day calendar (D5, 第二十三条 five working days) — library notes §5 cases."""

import datetime as dt
import json
import os

import pytest

from common import workdays
from common.workdays import (
    CalendarFileError,
    CalendarNotCovered,
    WorkdayCalendar,
    load_calendar_file,
)

D = dt.date
LIB = WorkdayCalendar()

CALENDAR_2027 = """
2027:
  holidays: [2027-01-01, "2027-02-06..2027-02-12"]
  workdays: [2027-02-20]
"""


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (D(2025, 9, 30), 5, D(2025, 10, 14)),  # National Day 2025 + make-up Sat 10-11
        (D(2026, 2, 13), 5, D(2026, 2, 27)),  # Spring Festival 2026 + make-up Sat 02-14
        (D(2026, 2, 13), 1, D(2026, 2, 14)),  # make-up Saturday counts
        (D(2026, 9, 30), 1, D(2026, 10, 8)),  # after the National Day break
        (D(2026, 9, 25), 3, D(2026, 9, 30)),  # start on a holiday: find_workday is one day late here
        (D(2026, 10, 3), 1, D(2026, 10, 8)),  # start on a holiday Saturday
        (D(2026, 2, 13), 0, D(2026, 2, 13)),
    ],
)
def test_add_workdays_counts_statutory_working_days_strictly_after_start_d5(start, n, expected):
    assert LIB.add_workdays(start, n) == expected


def test_add_workdays_negative_counts_backwards_strictly_before():
    # reminder two working days before the 2025-10-14 deadline is the make-up Saturday 2025-10-11
    assert LIB.add_workdays(D(2025, 10, 14), -2) == D(2025, 10, 11)
    assert LIB.add_workdays(D(2026, 2, 27), -2) == D(2026, 2, 25)


def test_is_workday_knows_make_up_saturdays_and_holidays():
    assert LIB.is_workday(D(2026, 2, 14)) is True  # Saturday, make-up day
    assert LIB.is_workday(D(2026, 10, 1)) is False  # National Day
    assert LIB.is_workday(D(2026, 10, 10)) is True  # Saturday, make-up day


def test_deadline_crossing_into_2027_is_an_explicit_calendar_error_d5():
    with pytest.raises(CalendarNotCovered) as err:
        LIB.add_workdays(D(2026, 12, 28), 5)
    assert err.value.year == 2027
    assert "2027" in err.value.message_zh
    assert not LIB.covers(2027)


def test_uncovered_past_year_is_an_error_too():
    with pytest.raises(CalendarNotCovered):
        LIB.is_workday(D(2003, 5, 6))


def test_operator_calendar_file_extends_to_2027(tmp_path):
    f = tmp_path / "cal.yaml"
    f.write_text(CALENDAR_2027)
    cal = WorkdayCalendar.from_file(f)
    assert cal.covers(2027) and cal.covers(2026)
    # 2026-12-28 (Mon) +5: 12-29, 12-30, 12-31, [2027-01-01 holiday], 01-04, 01-05
    assert cal.add_workdays(D(2026, 12, 28), 5) == D(2027, 1, 5)
    assert cal.is_workday(D(2027, 2, 20)) is True  # make-up Saturday
    assert cal.is_workday(D(2027, 2, 8)) is False  # holiday Monday
    assert 2027 in cal.covered_years()


def test_operator_file_replaces_a_library_year(tmp_path):
    f = tmp_path / "cal.json"
    f.write_text(json.dumps({"years": {"2026": {"holidays": ["2026-03-02"], "workdays": []}}}))
    cal = WorkdayCalendar.from_file(f)
    assert cal.is_workday(D(2026, 3, 2)) is False
    assert cal.is_workday(D(2026, 2, 14)) is False  # the file defines 2026 completely


def test_calendar_file_given_by_settings_is_re_read_when_the_operator_edits_it_d5(tmp_path):
    f = tmp_path / "cal.yaml"
    f.write_text("{}")
    source = workdays.CalendarFile(f)
    with pytest.raises(CalendarNotCovered):
        source().add_workdays(D(2026, 12, 28), 5)
    f.write_text(CALENDAR_2027)
    os.utime(f, (f.stat().st_mtime + 5, f.stat().st_mtime + 5))  # a later modification time, whatever the fs
    assert source().add_workdays(D(2026, 12, 28), 5) == D(2027, 1, 5)
    assert workdays.CalendarFile(None)().covers(2027) is False


@pytest.mark.parametrize(
    "content",
    [
        "2027:\n  holidays: [2026-12-31]\n",  # date of another year
        "2027:\n  holidays: [2027-02-20]\n  workdays: [2027-02-20]\n",  # both
        "2027:\n  holidays: [not-a-date]\n",
        "twenty:\n  holidays: []\n",
        "2027:\n  holiday: []\n",  # typo in key
    ],
)
def test_inconsistent_calendar_file_is_rejected(tmp_path, content):
    f = tmp_path / "cal.yaml"
    f.write_text(content)
    with pytest.raises(CalendarFileError):
        load_calendar_file(f)


def test_workdays_between():
    assert LIB.workdays_between(D(2025, 9, 30), D(2025, 10, 14)) == 5
    assert LIB.workdays_between(D(2025, 10, 14), D(2025, 9, 30)) == -5
