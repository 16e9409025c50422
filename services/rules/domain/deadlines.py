"""D5 due dates (第二十三条；附件3注2): Annex 3/4 are due within `record.deadline_workdays` statutory working
days counted from the day after the supervision ends, on the PRC calendar with its make-up working days.
A year the calendar does not cover is an explicit FAILED_PRECONDITION, never a Monday–Friday guess."""

from __future__ import annotations

import datetime as dt

from common.errors import FailedPrecondition, PreconditionViolation
from common.workdays import CalendarFileError, CalendarNotCovered, WorkdayCalendar
from services.rules.domain.ruleset import RuleSet

DEADLINE_PARAMETER = "record.deadline_workdays"


def due_date(rs: RuleSet, supervision_end: dt.date, calendar: WorkdayCalendar) -> tuple[dt.date, int]:
    """(due date, working days counted) for a supervision that ended on `supervision_end`."""
    days = int(rs.param(DEADLINE_PARAMETER))
    try:
        return calendar.add_workdays(supervision_end, days), days
    except CalendarNotCovered as exc:
        raise FailedPrecondition(
            CalendarNotCovered.reason,
            [
                PreconditionViolation(
                    "calendar.covered",
                    str(exc.year),
                    f"{exc.message_zh}；第二十三条规定的{days}个工作日期限（D5）不按自然周推算",
                )
            ],
            metadata={"year": str(exc.year), "supervision_end_date": supervision_end.isoformat()},
        ) from None
    except CalendarFileError as exc:  # the operator's BJSV_CALENDAR_FILE is broken: say so, not INTERNAL
        raise FailedPrecondition(
            "CALENDAR_FILE_INVALID",
            [PreconditionViolation("calendar.file", "BJSV_CALENDAR_FILE", f"法定工作日历文件无法读取：{exc}")],
        ) from None
