"""What each kind of event causes: notifications now, timers later, cancellations, operator alerts.

Pure functions from domain inputs to a :class:`Reaction`; ``services.notify.events`` converts the
registry's protobuf payloads into these inputs and applies the reaction in one transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from common.clock import SHANGHAI
from common.workdays import CalendarNotCovered, WorkdayCalendar
from services.notify.domain import messages
from services.notify.domain.model import (
    AlertDraft,
    AppointmentTerm,
    Form,
    FormDeadline,
    Kind,
    NotificationDraft,
    Reaction,
    appointment_group,
    case_group,
    deadline_group,
)
from services.notify.domain.schedule import (
    SchedulePolicy,
    appointment_timers,
    deadline_timers,
    penalty_reminder_timer,
)


def calendar_alert(exc: CalendarNotCovered, subject: str) -> AlertDraft:
    """D5: never guess Monday–Friday; tell the operator which year's calendar is missing."""
    return AlertDraft(
        key=f"CALENDAR_NOT_COVERED/{exc.year}/{subject}",
        code="CALENDAR_NOT_COVERED",
        message=f"{exc.message_zh}；受影响：{subject}（第二十三条期限按工作日计算）",
        subject=subject,
        year=exc.year,
    )


def schedule_deadline(
    deadline: FormDeadline, calendar: WorkdayCalendar, policy: SchedulePolicy, today: dt.date
) -> Reaction:
    """Timers for one 第二十三条 deadline, or an operator alert and a blocked entry if no calendar covers it."""
    r = Reaction()
    if deadline.due_date is None:  # the registry sets due dates (D5, the rule set's record.deadline_workdays)
        return r
    sched = deadline_timers(deadline, calendar, policy, today)
    r.timers += sched.timers
    if sched.uncovered is not None:
        r.alerts.append(calendar_alert(sched.uncovered, deadline.dispatch))
        r.blocked.append(deadline)
    return r


@dataclass(frozen=True)
class Party:
    name: str
    display_name: str = ""


@dataclass(frozen=True)
class DispatchInfo:
    dispatch: str
    plan_name: str
    institution: Party
    dispatching_agency: Party
    members: tuple[Party, ...]
    supervision_start: dt.date | None
    supervision_end: dt.date | None
    record_due: dt.date | None
    feedback_due: dt.date | None
    external: bool = True


def record_deadline(d: DispatchInfo) -> FormDeadline:
    names = "、".join(m.display_name or m.name for m in d.members)
    return FormDeadline(
        dispatch=d.dispatch,
        form=Form.RECORD,
        owners=tuple(m.name for m in d.members),
        owner_name=f"督导组（{names}）" if names else "督导组",
        dispatching_agency=d.dispatching_agency.name,
        plan_name=d.plan_name,
        supervision_end=d.supervision_end,
        due_date=d.record_due,
    )


def feedback_deadline(d: DispatchInfo, member: Party) -> FormDeadline:
    return FormDeadline(
        dispatch=d.dispatch,
        form=Form.FEEDBACK,
        owners=(d.institution.name,),
        owner_name=d.institution.display_name or d.institution.name,
        dispatching_agency=d.dispatching_agency.name,
        plan_name=d.plan_name,
        supervision_end=d.supervision_end,
        due_date=d.feedback_due,
        about=member.name,
        about_name=member.display_name,
    )


def on_dispatch_created(
    d: DispatchInfo, calendar: WorkdayCalendar, policy: SchedulePolicy, now: dt.datetime
) -> Reaction:
    """Tell the supervisors and the institution; start the Annex 3 and Annex 4 clocks (第二十三条)."""
    today = now.astimezone(SHANGHAI).date()
    r = Reaction()
    names = [m.display_name or m.name for m in d.members]
    rec = schedule_deadline(record_deadline(d), calendar, policy, today)
    record_due = d.record_due or next((t.draft.due_date for t in rec.timers if t.draft.due_date), None)
    feedback: list[Reaction] = []
    if d.external:  # Annex 4 is the institution's feedback on *external* supervisors
        feedback = [schedule_deadline(feedback_deadline(d, m), calendar, policy, today) for m in d.members]
    feedback_due = d.feedback_due or next(
        (t.draft.due_date for f in feedback for t in f.timers if t.draft.due_date), None
    )
    common: dict[str, Any] = dict(
        dispatch=d.dispatch,
        plan_name=d.plan_name,
        institution_name=d.institution.display_name,
        agency_name=d.dispatching_agency.display_name,
        supervisor_names=names,
        start=d.supervision_start,
        end=d.supervision_end,
        record_due=record_due,
        feedback_due=feedback_due,
    )
    for m in d.members:
        r.notifications.append(messages.dispatch_created(recipient=m.name, for_institution=False, **common))
    if d.external and d.institution.name:
        r.notifications.append(messages.dispatch_created(recipient=d.institution.name, for_institution=True, **common))
    r.extend(rec)
    for f in feedback:
        r.extend(f)
    # one alert per dispatch and year is enough
    r.alerts = list({a.key: a for a in r.alerts}.values())
    return r


def on_dispatch_cancelled(dispatch: str) -> Reaction:
    return Reaction(cancel_group_prefixes=[f"deadline/{dispatch}/"])


def on_member_replaced(
    d: DispatchInfo,
    replaced: str,
    replacement: Party,
    calendar: WorkdayCalendar,
    policy: SchedulePolicy,
    now: dt.datetime,
) -> Reaction:
    """The leaving member's clocks stop; the record clock restarts with the new team, the joiner is told."""
    today = now.astimezone(SHANGHAI).date()
    r = Reaction(
        cancel_groups=[deadline_group(d.dispatch, Form.RECORD), deadline_group(d.dispatch, Form.FEEDBACK, replaced)]
    )
    r.extend(schedule_deadline(record_deadline(d), calendar, policy, today))
    if d.external:
        r.extend(schedule_deadline(feedback_deadline(d, replacement), calendar, policy, today))
    r.notifications.append(
        messages.dispatch_created(
            dispatch=d.dispatch,
            recipient=replacement.name,
            plan_name=d.plan_name,
            institution_name=d.institution.display_name,
            agency_name=d.dispatching_agency.display_name,
            supervisor_names=[m.display_name or m.name for m in d.members],
            start=d.supervision_start,
            end=d.supervision_end,
            record_due=d.record_due,
            feedback_due=d.feedback_due,
            for_institution=False,
        )
    )
    return r


def on_submission(
    deadline: FormDeadline, *, submitted: str, submitted_on: dt.date, late: bool, late_workdays: int
) -> Reaction:
    """Stop the clock and confirm receipt to the dispatching agency (第二十三条)."""
    r = Reaction(cancel_groups=[deadline.group])
    if deadline.dispatching_agency:
        r.notifications.append(
            messages.submission_received(
                deadline=deadline,
                submitted=submitted,
                submitted_on=submitted_on,
                late=late,
                late_workdays=late_workdays,
            )
        )
    return r


def on_appointment(term: AppointmentTerm, policy: SchedulePolicy, now: dt.datetime) -> Reaction:
    """Term-end notices (第十三条) and the age-limit notice (第九条（五）); a renewal replaces the old ones."""
    timers, immediate = appointment_timers(term, policy, now)
    return Reaction(notifications=immediate, timers=timers, cancel_groups=[appointment_group(term.supervisor)])


def on_appointment_ended(supervisor: str) -> Reaction:
    return Reaction(cancel_groups=[appointment_group(supervisor)])


def on_case_awaiting_decision(
    *,
    case: str,
    recipients: list[str],
    target_name: str,
    recommendation: str,
    article: str,
    opened_on: dt.date,
    round_: int,
    calendar: WorkdayCalendar,
    policy: SchedulePolicy,
) -> Reaction:
    """D13: a recommendation awaits an authorised official's decision; re-announced if it stays open."""
    r = Reaction(cancel_groups=[case_group(case)])
    for rcpt in recipients:
        draft = messages.penalty_decision_pending(
            case=case,
            recipient=rcpt,
            target_name=target_name,
            recommendation=recommendation,
            article=article,
            opened_on=opened_on,
        )
        if round_:
            draft = replace(draft, key=f"{draft.key}/round/{round_}")
        r.notifications.append(draft)
        try:
            t = penalty_reminder_timer(
                case=case,
                recipient=rcpt,
                target_name=target_name,
                recommendation=recommendation,
                article=article,
                opened_on=opened_on,
                calendar=calendar,
                policy=policy,
            )
            r.timers.append(t)
        except CalendarNotCovered as exc:
            r.alerts.append(calendar_alert(exc, case))
    r.alerts = list({a.key: a for a in r.alerts}.values())
    return r


def on_case_decided(case: str) -> Reaction:
    return Reaction(cancel_groups=[case_group(case)])


EXCERPT = 200  # characters of a complaint's or report's text quoted in the notification (the rest is in the record)


def on_complaint_received(
    *, complaint: str, recipients: list[str], subject_name: str, source: str, content: str
) -> Reaction:
    """第二十二条(九): a complaint to investigate (调查、核实) reaches the city centre and the district agency."""
    body = f"收到群众举报（来源：{source}），涉及{subject_name}：{content[:EXCERPT]}。"
    body += "请配合市鉴定管理中心进行调查、核实（第二十二条第（九）项）。"
    return Reaction(notifications=[
        NotificationDraft(key=f"{Kind.COMPLAINT_RECEIVED}/{complaint}/{r}", recipient=r, kind=Kind.COMPLAINT_RECEIVED,
                          title=f"群众举报：{subject_name}", body=body, articles=("第二十二条",), subject=complaint)
        for r in recipients
    ])  # fmt: skip


def on_major_problem(
    *, report: str, recipients: list[str], reporter_name: str, findings: str, suggestions: str
) -> Reaction:
    """第二十二条(十): 向委派机构报告和反映情况，并提出建议 — to the dispatching agency and the city centre."""
    body = f"外督员{reporter_name}报告重大问题：{findings[:200]}。" + (
        f"建议：{suggestions[:200]}。" if suggestions else ""
    )
    return Reaction(notifications=[
        NotificationDraft(key=f"{Kind.MAJOR_PROBLEM_REPORTED}/{report}/{r}", recipient=r,
                          kind=Kind.MAJOR_PROBLEM_REPORTED, title=f"重大问题报告：{reporter_name}",
                          body=body + "（第二十二条第（十）项）", articles=("第二十二条",), subject=report)
        for r in recipients
    ])  # fmt: skip
