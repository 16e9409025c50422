"""第二十三条 deadlines (D5): records and feedback are due 5 working days after the supervision ends.

Working days come from `common.workdays` (statutory calendar with 调休 and the operator's calendar file);
a year neither covers raises `CalendarNotCovered`, which callers turn into an explicit error.
"""

from __future__ import annotations

import datetime as dt

from common.workdays import WorkdayCalendar, default_calendar
from services.registry.domain.workflow.model import Lateness


def due_date(supervision_end: dt.date, *, workdays: int, calendar: WorkdayCalendar | None = None) -> dt.date:
    """The Annex 3 record / Annex 4 feedback due date: the `workdays`-th (the rule set's
    `record.deadline_workdays`, D5: 5) working day strictly after the end day."""
    cal = calendar or default_calendar()
    return cal.add_workdays(supervision_end, workdays)


def assess_lateness(due: dt.date, submitted_on: dt.date, *, calendar: WorkdayCalendar | None = None) -> Lateness:
    """A late submission is accepted and marked late with how late (working and calendar days)."""
    if submitted_on <= due:
        return Lateness(False, 0, 0)
    cal = calendar or default_calendar()
    return Lateness(True, cal.workdays_between(due, submitted_on), (submitted_on - due).days)
