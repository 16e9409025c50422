"""Use cases of dispatches (委派, 第十四条, 第十九条–第二十二条): propose a team, create, cancel, replace a member,
read; and the preconditions other aggregates re-check in their own write transaction (dispatch active,
submitter a member of its team).

The team is checked by the rules service before the write; the write transaction holds the dispatch, its
members and the outbox event addressed to them (dispatch.created / .cancelled / .member_replaced)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bjsv.registry.v1 import supervision_events_pb2 as ev
from common import api
from common.auth import scope
from common.clock import SHANGHAI
from common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, PreconditionViolation
from common.events import record_event
from common.workdays import CalendarNotCovered
from services.registry.domain.problems import ProblemsError
from services.registry.domain.workflow import deadlines, timing
from services.registry.domain.workflow import dispatch as dispatch_rules
from services.registry.domain.workflow.model import SessionWindow, SupervisionForm
from services.registry.storage import workflow_models as wm
from services.registry.storage import workflow_repository as repo
from services.registry.usecases.errors import as_error, found
from services.registry.workflow import events, owners
from services.registry.workflow.context import Workflow, calendar_error, caller_org
from services.registry.workflow.convert import aware, to_proto_dispatch, to_proto_plan
from services.registry.workflow.results import DispatchView, Proposal, TeamCheck, TeamFinding
from services.registry.workflow.rules_port import TeamScope

ACTIVE = "active"


@dataclass(frozen=True)
class DispatchTarget:
    """What a dispatch supervises: plan, sessions (empty: all), dispatching agency, form and window."""

    plan: str
    session_ids: list[str]
    agency: str
    form: SupervisionForm | None
    start: dt.datetime | None
    end: dt.datetime | None


@dataclass(frozen=True)
class NewDispatch:
    target: DispatchTarget
    proposed: bool | None  # True: seeded draw (ProposeDispatch's seed), False: named team, None: not chosen
    seed: str
    team_size: int
    supervisors: list[str]
    client_request_id: str | None


@dataclass(frozen=True)
class Planned:
    """A dispatch target resolved against its plan: team scope, form and supervision window."""

    team: TeamScope
    form: SupervisionForm
    window: dispatch_rules.Window


def session_windows(plan_row: wm.CertPlan) -> list[SessionWindow]:
    return [
        SessionWindow(s["session_id"], dt.datetime.fromisoformat(s["start"]), dt.datetime.fromisoformat(s["end"]))
        for s in plan_row.sessions
    ]


def view(session: Session, row: wm.Dispatch) -> DispatchView:
    return DispatchView(
        row, repo.members(session, [row.id])[row.id], found(repo.plan(session, row.plan_id), f"plans/{row.plan_id}")
    )


def require_active(row: wm.Dispatch | None, name: str) -> wm.Dispatch:
    """A record, feedback or member change needs a dispatch that exists and is not cancelled."""
    if row is None:
        raise NotFound(name)
    if row.state != ACTIVE:
        raise FailedPrecondition(
            "DISPATCH_CANCELLED", [PreconditionViolation("bjsv.dispatch.state", name, "本次委派已取消")]
        )
    return row


def _ended_refusal(plan_row: wm.CertPlan, ended: list[SessionWindow]) -> FailedPrecondition:
    return FailedPrecondition(
        "ON_SITE_SESSION_ENDED",
        [
            PreconditionViolation(
                "bj-2022.dispatch.on-site-not-ended",
                f"plans/{plan_row.id}/sessions/{s.session_id}",
                f"场次{s.session_id}已于{s.end.astimezone(SHANGHAI):%Y-%m-%d %H:%M}结束，现场督导须在评价活动"
                "进行时实施（第二十一条）；已完成的评价活动请委派事后认定资料督导（第二十二条）",
            )
            for s in ended
        ],
    )


async def plan_dispatch(wf: Workflow, t: DispatchTarget, *, new_dispatch: bool = True) -> Planned:
    """The plan, form, scope, supervised sessions and window of a dispatch. A new on-site dispatch must not
    cover a session that has ended (第二十一条); changes to an existing dispatch (`new_dispatch=False`, e.g.
    replacing a member before its remaining sessions) are not refused for that. A new dispatch is made for a
    plan the dispatching agency or institution manages (第十四条、第二十条); an existing one was checked already."""
    plan_row = await wf.db.read(repo.plan, api.parse_id(t.plan, "plans", field="dispatch.plan"))
    if plan_row is None:
        raise NotFound(t.plan)
    if new_dispatch:
        scope.require(owners.of_plan(plan_row), t.plan)
    if t.form is None:
        raise InvalidArgument(
            "FORM_REQUIRED",
            [FieldViolation("dispatch.form", "请选择督导形式：现场督导或事后认定资料督导（第十九条）")],
        )
    try:
        team_scope = dispatch_rules.scope_of(t.agency)
        selected = dispatch_rules.select_sessions(session_windows(plan_row), list(t.session_ids))
        window = dispatch_rules.supervision_window(t.form, selected, start=t.start, end=t.end)
    except ProblemsError as e:
        raise as_error(e) from None
    ended = dispatch_rules.ended_sessions(selected, wf.clock.now()) if new_dispatch else []
    if t.form is SupervisionForm.ON_SITE and ended:
        raise _ended_refusal(plan_row, ended)
    if t.form is SupervisionForm.ON_SITE:
        days = [s.start.astimezone(SHANGHAI).date() for s in selected]
    else:
        days = [window.start_day for _ in selected]
    return Planned(TeamScope(plan_row, team_scope, selected, days), t.form, window)


async def _due_date(wf: Workflow, end_day: dt.date, subject: str) -> dt.date:
    """Annex 3 records and Annex 4 feedback share 第二十三条's deadline (D5)."""
    workdays = await wf.parameters.get("record.deadline_workdays", end_day)  # D5, from the rule set
    try:
        return deadlines.due_date(end_day, workdays=workdays, calendar=wf.calendar)
    except CalendarNotCovered as e:
        raise calendar_error(e, subject) from None


def _acting(t: DispatchTarget) -> DispatchTarget:
    """The dispatching agency is the caller's organisation (issue #12: never taken from the body)."""
    return dataclasses.replace(t, agency=scope.acting_org(t.agency, "dispatching_agency"))


async def propose(wf: Workflow, t: DispatchTarget, team_size: int, seed: str) -> Proposal:
    """A seeded draw and its check; a proposal reports its blocking findings instead of failing."""
    t = _acting(t)
    planned = await plan_dispatch(wf, t)
    drawn = await wf.rules.propose_team(planned.team, t.agency, team_size, seed, wf.today())
    team = [api.parse_id(n, "supervisors") for n in drawn.team]
    try:
        checked = await wf.rules.check_team(planned.team, t.agency, team, t.plan)
    except FailedPrecondition as e:
        blocking = [TeamFinding(v.type, v.description, "", v.subject) for v in e.violations]
        return Proposal(drawn.team, drawn.seed, drawn.rule_set_version, blocking=blocking, pool=drawn.pool)
    return Proposal(
        drawn.team,
        drawn.seed,
        drawn.rule_set_version,
        checked.recommended_team_size,
        advisory=checked.advisory,
        pool=drawn.pool,
    )


async def _choose_team(wf: Workflow, cmd: NewDispatch, planned: Planned) -> tuple[list[str], str, str]:
    """The team names, the seed and how they were selected ("proposed" draw or "manual" list)."""
    if cmd.proposed is None:
        raise InvalidArgument("SELECTION_REQUIRED", [FieldViolation("selection", "请选择随机抽取或指定名单")])
    if not cmd.proposed:
        return list(cmd.supervisors), "", "manual"
    if not cmd.seed:
        raise InvalidArgument(
            "SEED_REQUIRED",
            [FieldViolation("seed", "随机抽取的委派须提供抽取种子（ProposeDispatch 返回的 seed）")],
        )
    drawn = await wf.rules.propose_team(planned.team, cmd.target.agency, cmd.team_size, cmd.seed, wf.today())
    if cmd.supervisors and sorted(cmd.supervisors) != sorted(drawn.team):
        raise FailedPrecondition(
            "POOL_CHANGED",
            [
                PreconditionViolation(
                    "bjsv.dispatch.draw",
                    cmd.target.plan,
                    "以该种子重新抽取的督导组与提交的名单不一致（督导员库已变化），请重新抽取",
                )
            ],
        )
    return drawn.team, drawn.seed, "proposed"


def _by_request(session: Session, crid: str) -> DispatchView | None:
    row = repo.dispatch_by_request(session, crid)
    if row is None:
        return None
    done = view(session, row)
    scope.require(owners.of_dispatch(row, done.members, done.plan), f"dispatches/{row.id}")
    return done


def _created_event(session: Session, v: DispatchView) -> None:
    d = v.dispatch
    record_event(
        session,
        type=events.DISPATCH_CREATED,
        subject=f"dispatches/{d.id}",
        payload=ev.DispatchCreated(
            dispatch=to_proto_dispatch(v),
            plan=to_proto_plan(v.plan),
            record_due_date=api.format_date(d.record_due),
            feedback_due_date=api.format_date(d.feedback_due),
            recipients=events.dispatch_recipients(session, v),
        ),
    )


async def create(wf: Workflow, cmd: NewDispatch) -> DispatchView:
    crid, t = cmd.client_request_id, _acting(cmd.target)
    cmd = dataclasses.replace(cmd, target=t)
    if crid and (done := await wf.db.read(_by_request, crid)) is not None:
        return done
    planned = await plan_dispatch(wf, t)
    names, seed, selection = await _choose_team(wf, cmd, planned)
    try:
        dispatch_rules.validate_team_list(names)
    except ProblemsError as e:
        raise as_error(e) from None
    team = [api.parse_id(n, "supervisors", field="supervisors") for n in names]
    checked = await wf.rules.check_team(planned.team, t.agency, team, t.plan)
    due = await _due_date(wf, timing.deadline_base(planned.form, planned.window, wf.today()), t.plan)
    now, actor, plan_row = wf.clock.now(), caller_org(), planned.team.plan

    def tx(session: Session) -> DispatchView:
        if crid and (again := _by_request(session, crid)) is not None:
            return again
        row, members = repo.insert_dispatch(
            session,
            plan_row,
            session_ids=[s.session_id for s in planned.team.sessions] if t.session_ids else [],
            dispatching_agency=t.agency,
            scope=planned.team.scope.value,
            form=planned.form.value,
            selection=selection,
            seed=seed,
            advisory_findings=[f.as_json() for f in checked.advisory],
            rule_set_version=checked.rule_set_version,
            decisions=checked.decisions,
            window=planned.window,
            record_due=due,
            feedback_due=due,
            team=[checked.views[sid] for sid in team],
            client_request_id=crid,
            actor=actor,
            now=now,
        )
        created = DispatchView(row, members, plan_row)
        _created_event(session, created)
        return created

    try:
        return await wf.db.write(tx)
    except sa.exc.IntegrityError:
        if crid and (done := await wf.db.read(_by_request, crid)) is not None:
            return done
        raise


async def cancel(wf: Workflow, dispatch_id: int, name: str, reason: str) -> DispatchView:
    if not reason.strip():
        raise InvalidArgument("REASON_REQUIRED", [FieldViolation("reason", "取消委派须说明原因")])
    now = wf.clock.now()

    def tx(session: Session) -> DispatchView:
        row = repo.dispatch(session, dispatch_id, for_update=True)
        if row is None:
            raise NotFound(name)
        owners.dispatch(session, row, name)
        if row.state == "cancelled":
            return view(session, row)
        if repo.record_of_dispatch(session, dispatch_id) is not None:
            raise FailedPrecondition(
                "DISPATCH_HAS_RECORD",
                [PreconditionViolation("bjsv.dispatch.state", name, "督导记录表已提交，不能取消本次委派")],
            )
        repo.cancel_dispatch(session, row, reason=reason.strip(), now=now)
        cancelled = view(session, row)
        record_event(
            session,
            type=events.DISPATCH_CANCELLED,
            subject=name,
            payload=ev.DispatchCancelled(
                dispatch=to_proto_dispatch(cancelled), recipients=events.dispatch_recipients(session, cancelled)
            ),
        )
        return cancelled

    return await wf.db.write(tx)


@dataclass(frozen=True)
class Replacement:
    name: str
    leaving: str
    joining: str
    reason: str


async def planned_of(wf: Workflow, row: wm.Dispatch) -> Planned:
    """The plan, sessions and window an existing dispatch supervises (its remaining sessions may have ended)."""
    target = DispatchTarget(
        f"plans/{row.plan_id}",
        row.session_ids,
        row.dispatching_agency,
        SupervisionForm(row.form),
        aware(row.window_start),
        aware(row.window_end),
    )
    return await plan_dispatch(wf, target, new_dispatch=False)


def _replaceable(session: Session, dispatch_id: int, name: str) -> wm.Dispatch:
    row = repo.dispatch(session, dispatch_id)
    if row is not None:
        owners.dispatch(session, row, name)
    return require_active(row, name)


async def _check_replacement(wf: Workflow, dispatch_id: int, r: Replacement) -> TeamCheck:
    row = await wf.db.read(_replaceable, dispatch_id, r.name)
    members = (await wf.db.read(repo.members, [dispatch_id]))[dispatch_id]
    active = [f"supervisors/{m.supervisor_id}" for m in members if m.state == ACTIVE]
    try:
        dispatch_rules.validate_replacement(active, r.leaving, r.joining, r.reason)
    except ProblemsError as e:
        raise as_error(e) from None
    planned = await planned_of(wf, row)
    team = [api.parse_id(n, "supervisors") for n in active if n != r.leaving] + [api.parse_id(r.joining, "supervisors")]
    return await wf.rules.check_team(planned.team, row.dispatching_agency, team, r.name)


async def replace_member(wf: Workflow, dispatch_id: int, r: Replacement) -> DispatchView:
    checked = await _check_replacement(wf, dispatch_id, r)
    leaving, joining = api.parse_id(r.leaving, "supervisors"), api.parse_id(r.joining, "supervisors")
    now, joiner = wf.clock.now(), checked.views[joining]

    def tx(session: Session) -> DispatchView:
        d = require_active(repo.dispatch(session, dispatch_id, for_update=True), r.name)
        ms = repo.members(session, [dispatch_id])[dispatch_id]
        old = next((m for m in ms if m.supervisor_id == leaving and m.state == ACTIVE), None)
        if old is None or any(m.supervisor_id == joining and m.state == ACTIVE for m in ms):
            raise FailedPrecondition(
                "TEAM_CHANGED",
                [PreconditionViolation("bjsv.dispatch.members", r.name, "督导组已被他人修改，请重新读取")],
            )
        ms = repo.replace_member(
            session,
            d,
            old,
            joiner,
            reason=r.reason.strip(),
            advisory_findings=[f.as_json() for f in checked.advisory],
            rule_set_version=checked.rule_set_version,
            decisions=checked.decisions,
            now=now,
        )
        changed = DispatchView(d, ms, found(repo.plan(session, d.plan_id), f"plans/{d.plan_id}"))
        recipients = events.dispatch_recipients(session, changed)
        recipients.insert(0, ev.Recipient(party=r.leaving, display_name=old.display_name, role="supervisor"))
        record_event(
            session,
            type=events.DISPATCH_MEMBER_REPLACED,
            subject=r.name,
            payload=ev.DispatchMemberReplaced(
                dispatch=to_proto_dispatch(changed),
                replaced_supervisor=r.leaving,
                replacement=r.joining,
                reason=r.reason.strip(),
                recipients=recipients,
            ),
        )
        return changed

    return await wf.db.write(tx)


async def get(wf: Workflow, dispatch_id: int, name: str) -> DispatchView:
    def read(session: Session) -> DispatchView | None:
        row = repo.dispatch(session, dispatch_id)
        if row is None:
            return None
        found = view(session, row)
        scope.require(owners.of_dispatch(row, found.members, found.plan), name)
        return found

    found = await wf.db.read(read)
    if found is None:
        raise NotFound(name)
    return found
