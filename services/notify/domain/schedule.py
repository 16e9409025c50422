"""When to tell whom: timers for deadlines (第二十三条, D5), terms (第十三条), age (第九条（五）, D6), cases.

All instants are Asia/Shanghai. A notice for a date fires at ``SchedulePolicy.send_time`` on that date.
Working days come from :mod:`common.workdays`; a date in a year no calendar covers raises
``CalendarNotCovered`` (the caller raises an operator alert instead of guessing Monday–Friday, D5).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from common.ages import anniversary
from common.clock import SHANGHAI
from common.workdays import CalendarNotCovered, WorkdayCalendar
from services.notify.domain import messages
from services.notify.domain.model import (
    AppointmentTerm,
    FormDeadline,
    TimerSpec,
    appointment_group,
    case_group,
)


@dataclass(frozen=True)
class SchedulePolicy:
    """Overridable parameters of the notification schedule (named policy, not literals in code)."""

    send_time: dt.time = dt.time(9, 0)
    reminder_workdays_before: int = 2
    # overdue notices to the dispatching agency: first on the working day after the due date,
    # then every `overdue_repeat_workdays`, at most `overdue_max_notices` in all.
    overdue_repeat_workdays: int = 5
    overdue_max_notices: int = 3
    # 第十三条: term-end notices to the appointing organisation.
    expiry_days_before: tuple[int, ...] = (90, 30, 7)
    # 第九条（五）: advance notice this many days before a supervisor exceeds the age limit within the term
    # (the limit itself, D6, comes with the registry's appointment event from the rule set).
    age_notice_days_before: int = 30
    # D13: an open penalty recommendation is re-announced after this many working days.
    penalty_reminder_workdays: int = 5


def at_send_time(d: dt.date, policy: SchedulePolicy) -> dt.datetime:
    return dt.datetime.combine(d, policy.send_time, tzinfo=SHANGHAI)


@dataclass(frozen=True)
class DeadlineSchedule:
    """Timers of one deadline; ``uncovered`` is set when later notices fell into an uncovered year."""

    timers: list[TimerSpec]
    uncovered: CalendarNotCovered | None = None


def deadline_timers(
    deadline: FormDeadline, calendar: WorkdayCalendar, policy: SchedulePolicy, today: dt.date
) -> DeadlineSchedule:
    """Reminder 2 working days before, due-day notice, then overdue notices to the dispatching agency.

    Notices for days already past are not scheduled (past overdue notices collapse into the latest
    one, which fires at once), so a late event does not flood the inbox. If a notice day lies in a year
    no calendar covers, the notices before it are kept and ``uncovered`` says which year is missing.
    """
    if deadline.due_date is None:
        raise ValueError("deadline without due date")
    due = deadline.due_date
    group = deadline.group
    timers: list[TimerSpec] = []
    try:
        reminder_day = calendar.add_workdays(due, -policy.reminder_workdays_before)
        if reminder_day >= today and (deadline.supervision_end is None or reminder_day > deadline.supervision_end):
            for owner in deadline.owners:
                draft = messages.deadline_reminder(deadline, owner, policy.reminder_workdays_before)
                timers.append(TimerSpec(draft.key, at_send_time(reminder_day, policy), group, draft))
    except CalendarNotCovered:
        pass  # the reminder is a courtesy; the due-day and overdue notices below still apply
    if due >= today:
        for owner in deadline.owners:
            draft = messages.deadline_due_today(deadline, owner)
            timers.append(TimerSpec(draft.key, at_send_time(due, policy), group, draft))
    try:
        day = calendar.add_workdays(due, 1)
        late = 1
        for seq in range(1, policy.overdue_max_notices + 1):
            last = seq == policy.overdue_max_notices
            uncovered = None
            try:
                next_day = None if last else calendar.add_workdays(day, policy.overdue_repeat_workdays)
            except CalendarNotCovered as exc:
                next_day, uncovered = None, exc  # the calendar ends here: this notice is the last
            if next_day is None or next_day > today:  # None: the last notice
                draft = messages.deadline_overdue(deadline, day, late, seq)
                timers.append(TimerSpec(draft.key, at_send_time(day, policy), group, draft))
            if uncovered is not None:
                return DeadlineSchedule(timers, uncovered)
            if next_day is None:
                break
            day = next_day
            late += policy.overdue_repeat_workdays
    except CalendarNotCovered as exc:
        return DeadlineSchedule(timers, exc)
    return DeadlineSchedule(timers)


def ineligible_from(term: AppointmentTerm) -> tuple[dt.date, int] | None:
    """First day the supervisor exceeds the age limit (D6), with the limit; None if unknown."""
    limit = term.age_limit_years
    if not limit or term.birth_date is None:
        return None
    return anniversary(term.birth_date, limit + 1), limit  # the day they turn limit + 1 (周岁, D6)


def appointment_timers(term: AppointmentTerm, policy: SchedulePolicy, now: dt.datetime) -> tuple[list[TimerSpec], list]:
    """Expiry notices 90/30/7 days before the term ends; the age-limit notice if the limit falls in the term.

    Returns (timers, immediate drafts). Past notice days are skipped.
    """
    today = now.astimezone(SHANGHAI).date()
    group = appointment_group(term.supervisor)
    timers: list[TimerSpec] = []
    immediate = []
    for days in policy.expiry_days_before:
        day = term.term_end - dt.timedelta(days=days)
        if day >= today:
            draft = messages.appointment_expiring(term, days)
            timers.append(TimerSpec(draft.key, at_send_time(day, policy), group, draft))
    limit = ineligible_from(term)
    if limit is not None:
        first_bad, years = limit
        if term.term_start < first_bad <= term.term_end:
            immediate.append(messages.age_limit_in_term(term, first_bad, years, advance=False))
            notice_day = first_bad - dt.timedelta(days=policy.age_notice_days_before)
            if notice_day > today:
                draft = messages.age_limit_in_term(term, first_bad, years, advance=True)
                timers.append(TimerSpec(draft.key, at_send_time(notice_day, policy), group, draft))
    return timers, immediate


def penalty_reminder_timer(
    *,
    case: str,
    recipient: str,
    target_name: str,
    recommendation: str,
    article: str,
    opened_on: dt.date,
    calendar: WorkdayCalendar,
    policy: SchedulePolicy,
) -> TimerSpec:
    """D13: re-announce an undecided recommendation after N working days (cancelled by the decision)."""
    day = calendar.add_workdays(opened_on, policy.penalty_reminder_workdays)
    draft = messages.penalty_decision_pending(
        case=case,
        recipient=recipient,
        target_name=target_name,
        recommendation=recommendation,
        article=article,
        opened_on=opened_on,
        reminder=True,
        remind_on=day,
    )
    return TimerSpec(draft.key, at_send_time(day, policy), case_group(case), draft)
