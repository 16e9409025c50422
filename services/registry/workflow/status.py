"""Read-side use cases across aggregates: dispatch lists, a plan's status (dispatches with their record,
feedback and cases) and what is overdue under 第二十三条 (records and feedback past their due date)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from common import api
from common.auth import scope
from common.errors import NotFound
from common.workdays import CalendarNotCovered, WorkdayCalendar
from services.registry.domain.workflow.model import DispatchScope
from services.registry.storage import workflow_case_repository as cases_repo
from services.registry.storage import workflow_models as wm
from services.registry.storage import workflow_repository as repo
from services.registry.usecases.errors import found
from services.registry.workflow import owners
from services.registry.workflow.cases import sanction_texts
from services.registry.workflow.context import Workflow
from services.registry.workflow.dispatches import ACTIVE
from services.registry.workflow.results import (
    CaseView,
    DispatchStatus,
    DispatchView,
    FeedbackView,
    OverdueItem,
    PlanStatus,
    RecordView,
)


def _late_days(calendar: WorkdayCalendar, due: dt.date, today: dt.date) -> int:
    try:
        return calendar.workdays_between(due, today)
    except CalendarNotCovered:  # a listing never fails for a year no calendar covers: count calendar days
        return (today - due).days


def overdue(session: Session, rows: list[wm.Dispatch], today: dt.date, calendar: WorkdayCalendar) -> list[OverdueItem]:
    """Missing records/feedback whose due date has passed (第二十三条)."""
    ids = [r.id for r in rows]
    with_record = repo.record_dispatch_ids(session, ids)
    fb = repo.feedback_pairs(session, ids)
    mem = repo.members(session, ids)
    plans_ = repo.plans_by_ids(session, sorted({r.plan_id for r in rows}))
    out = []
    for r in rows:
        p = plans_[r.plan_id]
        base = {
            "dispatch": f"dispatches/{r.id}",
            "plan": f"plans/{r.plan_id}",
            "dispatching_agency": r.dispatching_agency,
            "institution": p.institution,
            "plan_title": p.title,
        }
        if r.id not in with_record and r.record_due < today:
            out.append(
                OverdueItem(
                    "record",
                    due_date=r.record_due,
                    overdue_working_days=_late_days(calendar, r.record_due, today),
                    **base,
                )
            )
        if r.scope == DispatchScope.EXTERNAL.value and r.feedback_due < today:
            late = _late_days(calendar, r.feedback_due, today)
            out.extend(
                OverdueItem(
                    "feedback",
                    due_date=r.feedback_due,
                    overdue_working_days=late,
                    supervisor=f"supervisors/{m.supervisor_id}",
                    **base,
                )
                for m in mem[r.id]
                if m.state == ACTIVE and (r.id, m.supervisor_id) not in fb
            )
    return out


def _member_filter(member: str) -> int | None:
    """The `member` filter, narrowed by the scope helper (a supervisor lists only their own dispatches)."""
    member = scope.narrow_supervisor(member)
    return api.parse_id(member, "supervisors", field="member") if member else None


async def list_dispatches(
    wf: Workflow,
    *,
    day: dt.date | None,
    agency: str,
    plan_id: int | None,
    include_cancelled: bool,
    overdue_only: bool,
    offset: int,
    limit: int,
    member: str = "",
) -> tuple[list[DispatchView], int]:
    today, calendar = wf.today(), wf.calendar
    member_id = _member_filter(member)

    def read(session: Session) -> tuple[list[DispatchView], int]:
        rows = repo.list_dispatches(
            session,
            day=day,
            agency=agency,
            plan_id=plan_id,
            include_cancelled=include_cancelled,
            due_before=today if overdue_only else None,
            member_id=member_id,
        )
        # members and plans of all rows in two queries, for the scope check and the page's views
        mem = repo.members(session, [r.id for r in rows])
        plans = repo.plans_by_ids(session, sorted({r.plan_id for r in rows}))
        rows = owners.visible_dispatches(session, rows, mem, plans)
        if overdue_only:
            late = {o.dispatch for o in overdue(session, rows, today, calendar)}
            rows = [r for r in rows if f"dispatches/{r.id}" in late]
        page = rows[offset : offset + limit]
        views = [DispatchView(r, mem[r.id], found(plans.get(r.plan_id), f"plans/{r.plan_id}")) for r in page]
        return views, len(rows)

    return await wf.db.read(read)


def _dispatch_status(
    session: Session, v: DispatchView, members: list[wm.DispatchMember], late: list[OverdueItem]
) -> DispatchStatus:
    r, p = v.dispatch, v.plan
    rec = repo.record_of_dispatch(session, r.id)
    record: RecordView | None = None
    if rec is not None:
        version = found(repo.record_version(session, rec.id, rec.current_version), f"records/{rec.id}")
        record = RecordView(rec, version, r, p)
    fbs = repo.feedback_of_dispatch(session, r.id)
    got = {f.supervisor_id for f in fbs}
    missing = []
    if r.scope == DispatchScope.EXTERNAL.value and r.state == ACTIVE:
        missing = [
            f"supervisors/{m.supervisor_id}" for m in members if m.state == ACTIVE and m.supervisor_id not in got
        ]
    name = f"dispatches/{r.id}"
    return DispatchStatus(
        view=v,
        record=record,
        feedback=[FeedbackView(f, r, p) for f in fbs],
        feedback_missing=missing,
        record_overdue=any(o.dispatch == name and o.kind == "record" for o in late),
        feedback_overdue=any(o.dispatch == name and o.kind == "feedback" for o in late),
    )


async def plan_status(wf: Workflow, plan_id: int, name: str) -> PlanStatus:
    today, calendar = wf.today(), wf.calendar
    texts = await sanction_texts(wf, today)

    def read(session: Session) -> PlanStatus | None:
        p = repo.plan(session, plan_id)
        if p is None:
            return None
        owners.plan(session, p, name)
        rows = repo.list_dispatches(
            session, day=None, agency="", plan_id=plan_id, include_cancelled=True, due_before=None
        )
        late = overdue(session, [r for r in rows if r.state == ACTIVE], today, calendar)
        mem = repo.members(session, [r.id for r in rows])
        statuses = [_dispatch_status(session, DispatchView(r, mem[r.id], p), mem[r.id], late) for r in rows]
        cases, _ = cases_repo.list_cases(
            session, subject="", state="", district="", plan_id=plan_id, offset=0, limit=500
        )
        decs = cases_repo.decisions(session, [c.id for c in cases])
        return PlanStatus(p, statuses, [CaseView(c, decs[c.id], texts) for c in cases])

    status = await wf.db.read(read)
    if status is None:
        raise NotFound(name)
    return status


async def list_overdue(wf: Workflow, *, agency: str, district: str) -> tuple[list[OverdueItem], dt.date]:
    today, calendar = wf.today(), wf.calendar

    def read(session: Session) -> list[OverdueItem]:
        rows = repo.list_dispatches(
            session, day=None, agency=agency, plan_id=None, include_cancelled=False, due_before=today
        )
        if district:
            rows = [r for r in rows if r.district == district]
        items = overdue(session, owners.visible_dispatches(session, rows), today, calendar)
        return sorted(items, key=lambda o: (o.due_date, o.dispatch, o.kind, o.supervisor))

    return await wf.db.read(read), today
