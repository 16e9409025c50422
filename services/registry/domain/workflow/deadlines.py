"""第二十三条 deadlines (D5): records and feedback are due 5 working days after the supervision ends.

Working days come from `common.workdays` (statutory calendar with 调休 and the operator's calendar file);
a year neither covers raises `CalendarNotCovered`, which callers turn into an explicit error.
"""

from __future__ import annotations

import datetime as dt

from common.workdays import WorkdayCalendar
from services.registry.domain.workflow.model import Lateness

#: chinese-calendar's years only; the service passes the operator's calendar (BJSV_CALENDAR_FILE) in.
LIBRARY_CALENDAR = WorkdayCalendar()


def due_date(supervision_end: dt.date, *, workdays: int, calendar: WorkdayCalendar = LIBRARY_CALENDAR) -> dt.date:
    """The Annex 3 record / Annex 4 feedback due date: the `workdays`-th (the rule set's
    `record.deadline_workdays`, D5: 5) working day strictly after the end day."""
    return calendar.add_workdays(supervision_end, workdays)


def assess_lateness(due: dt.date, submitted_on: dt.date, *, calendar: WorkdayCalendar = LIBRARY_CALENDAR) -> Lateness:
    """A late submission is accepted and marked late with how late (working and calendar days)."""
    if submitted_on <= due:
        return Lateness(False, 0, 0)
    return Lateness(True, calendar.workdays_between(due, submitted_on), (submitted_on - due).days)
