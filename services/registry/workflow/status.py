"""Read-side use cases across aggregates: dispatch lists, a plan's status (dispatches with their record,
feedback and cases) and what is overdue under 第二十三条 (records and feedback past their due date)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from common import api
from common.auth import scope
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


@dataclass(frozen=True)
class Submitted:
    """What has come in for a set of dispatches: those with a record, and (dispatch, supervisor) feedback pairs."""

    records: set[int]
    feedback: set[tuple[int, int]]


def submitted(session: Session, dispatch_ids: list[int]) -> Submitted:
    return Submitted(repo.record_dispatch_ids(session, dispatch_ids), repo.feedback_pairs(session, dispatch_ids))


def overdue(
    came_in: Submitted,
    rows: list[wm.Dispatch],
    mem: dict[int, list[wm.DispatchMember]],
    plans_: dict[int, wm.CertPlan],
    today: dt.date,
    calendar: WorkdayCalendar,
) -> list[OverdueItem]:
    """Missing records/feedback of these dispatches whose due date has passed (第二十三条); the caller has read
    their members, plans and what came in, so no listing reads them twice."""
    with_record, fb = came_in.records, came_in.feedback
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
            late = {
                o.dispatch for o in overdue(submitted(session, [r.id for r in rows]), rows, mem, plans, today, calendar)
            }
            rows = [r for r in rows if f"dispatches/{r.id}" in late]
        page = rows[offset : offset + limit]
        views = [DispatchView(r, mem[r.id], found(plans.get(r.plan_id), f"plans/{r.plan_id}")) for r in page]
        return views, len(rows)

    return await wf.db.read(read)


def _dispatch_status(
    v: DispatchView,
    record: tuple[wm.SupervisionRecord, wm.SupervisionRecordVersion | None] | None,
    fbs: list[wm.SupervisorFeedback],
    late: list[OverdueItem],
) -> DispatchStatus:
    r, p = v.dispatch, v.plan
    rec_view: RecordView | None = None
    if record is not None:
        rec, version = record
        rec_view = RecordView(rec, found(version, f"records/{rec.id}"), r, p)
    got = {f.supervisor_id for f in fbs}
    missing = []
    if r.scope == DispatchScope.EXTERNAL.value and r.state == ACTIVE:
        missing = [
            f"supervisors/{m.supervisor_id}" for m in v.members if m.state == ACTIVE and m.supervisor_id not in got
        ]
    name = f"dispatches/{r.id}"
    return DispatchStatus(
        view=v,
        record=rec_view,
        feedback=[FeedbackView(f, r, p) for f in fbs],
        feedback_missing=missing,
        record_overdue=any(o.dispatch == name and o.kind == "record" for o in late),
        feedback_overdue=any(o.dispatch == name and o.kind == "feedback" for o in late),
    )


CASES_PER_PLAN = 500  # the newest cases of a plan a status shows


async def plan_statuses(wf: Workflow, wanted: list[tuple[int, str]]) -> list[PlanStatus]:
    """The status of each plan asked for ((id, name) pairs), in that order: its dispatches with record, feedback
    and what is overdue, and its cases. One set of queries for all the plans, however many dispatches they
    have; a plan missing or outside the caller's scope fails the whole call, as GetPlanStatus on it would."""
    today, calendar = wf.today(), wf.calendar
    texts = await sanction_texts(wf, today)

    def read(session: Session) -> list[PlanStatus]:
        ids = sorted({plan_id for plan_id, _ in wanted})
        plans = repo.plans_by_ids(session, ids)
        rows = repo.dispatches_of_plans(session, ids)
        mem = repo.members(session, [r.id for r in rows])
        of_plan: dict[int, list[wm.Dispatch]] = {i: [] for i in ids}
        for r in rows:
            of_plan[r.plan_id].append(r)
        for plan_id, name in wanted:
            owners.plan_with(found(plans.get(plan_id), name), of_plan[plan_id], mem, name)
        dispatch_ids = [r.id for r in rows]
        records = repo.current_records(session, dispatch_ids)
        fbs = repo.feedback_of_dispatches(session, dispatch_ids)
        came_in = Submitted(set(records), {(f.dispatch_id, f.supervisor_id) for fs in fbs.values() for f in fs})
        late = overdue(came_in, [r for r in rows if r.state == ACTIVE], mem, plans, today, calendar)
        cases = cases_repo.cases_of_plans(session, ids)
        decs = cases_repo.decisions(session, [c.id for cs in cases.values() for c in cs[:CASES_PER_PLAN]])
        out = []
        for plan_id, _ in wanted:
            p = plans[plan_id]
            statuses = [
                _dispatch_status(DispatchView(r, mem[r.id], p), records.get(r.id), fbs[r.id], late)
                for r in of_plan[plan_id]
            ]
            out.append(
                PlanStatus(p, statuses, [CaseView(c, decs[c.id], texts) for c in cases[plan_id][:CASES_PER_PLAN]])
            )
        return out

    return await wf.db.read(read)


async def list_overdue(wf: Workflow, *, agency: str, district: str) -> tuple[list[OverdueItem], dt.date]:
    today, calendar = wf.today(), wf.calendar

    def read(session: Session) -> list[OverdueItem]:
        rows = repo.list_dispatches(
            session, day=None, agency=agency, plan_id=None, include_cancelled=False, due_before=today
        )
        if district:
            rows = [r for r in rows if r.district == district]
        mem = repo.members(session, [r.id for r in rows])
        plans = repo.plans_by_ids(session, sorted({r.plan_id for r in rows}))
        rows = owners.visible_dispatches(session, rows, mem, plans)
        items = overdue(submitted(session, [r.id for r in rows]), rows, mem, plans, today, calendar)
        return sorted(items, key=lambda o: (o.due_date, o.dispatch, o.kind, o.supervisor))

    return await wf.db.read(read), today
