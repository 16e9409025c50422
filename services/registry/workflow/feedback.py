"""Use cases of supervisor feedback (外督员情况反馈表, 附件4; 第二十三条): submit, read. When the rules service
says the answers open a 第二十七条 review (EvaluateFeedback, D12), the review case on the supervisor opens in the
feedback's transaction.

Like records, submitting is `prepare` (reads, validation, the rules service's recommendation) then `commit`,
whose write transaction checks every precondition again against the locked dispatch row."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bjsv.registry.v1 import supervision_events_pb2 as ev
from common import api
from common.clock import SHANGHAI
from common.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
)
from common.events import record_event
from services.registry.domain.problems import ProblemsError, Refused
from services.registry.domain.workflow import deadlines, timing
from services.registry.domain.workflow import dispatch as dispatch_rules
from services.registry.domain.workflow import feedback as feedback_rules
from services.registry.domain.workflow.model import (
    Answer,
    CaseOrigin,
    CaseSubjectKind,
    DispatchScope,
    Lateness,
    SupervisionForm,
)
from services.registry.storage import workflow_models as wm
from services.registry.storage import workflow_repository as repo
from services.registry.usecases.errors import as_error, found
from services.registry.workflow import cases, declarations, dispatches, events, owners
from services.registry.workflow.context import Workflow, caller_org
from services.registry.workflow.convert import aware, to_proto_dispatch, to_proto_feedback
from services.registry.workflow.results import FeedbackView


@dataclass(frozen=True)
class FeedbackSubmission:
    dispatch: str
    supervisor: str
    answers: feedback_rules.FeedbackAnswers
    entry: dt.datetime | None
    exit: dt.datetime | None
    comments: str
    signed_by: str
    client_request_id: str


@dataclass(frozen=True)
class PreparedFeedback:
    submission: FeedbackSubmission
    dispatch_id: int
    supervisor_id: int
    lateness: Lateness
    review: cases.CaseDraft | None  # the 第二十七条 review a "否" opens (D12); its source is set on commit
    today: dt.date


def by_request(session: Session, crid: str) -> FeedbackView | None:
    f = repo.feedback_by_request(session, crid)
    if f is None:
        return None
    d = found(repo.dispatch(session, f.dispatch_id), f"dispatches/{f.dispatch_id}")
    owners.feedback(session, d, f"feedback/{f.id}")
    return FeedbackView(f, d, found(repo.plan(session, d.plan_id), f"plans/{d.plan_id}"))


def _submittable(
    session: Session, dispatch_id: int, s: FeedbackSubmission, sup_id: int, *, lock: bool = False
) -> tuple[wm.Dispatch, wm.DispatchMember]:
    """第二十三条: feedback on an external supervisor of an active dispatch's team, once per supervisor."""
    d = repo.dispatch(session, dispatch_id, for_update=lock)
    if d is not None:
        owners.feedback(session, d, s.dispatch)
    d = dispatches.require_active(d, s.dispatch)
    if d.scope != DispatchScope.EXTERNAL.value:
        raise FailedPrecondition(
            "FEEDBACK_EXTERNAL_ONLY",
            [
                PreconditionViolation(
                    "bjsv.feedback.scope", s.dispatch, "外督员情况反馈表（附件4）仅适用于委派的外督员（第二十三条）"
                )
            ],
        )
    members = repo.members(session, [dispatch_id])[dispatch_id]
    member = next((m for m in members if m.supervisor_id == sup_id and m.state == dispatches.ACTIVE), None)
    if member is None:
        raise FailedPrecondition(
            "NOT_A_DISPATCHED_SUPERVISOR",
            [PreconditionViolation("bjsv.feedback.supervisor", s.supervisor, "该外督员不在本次委派的督导组中")],
        )
    declarations.require_declared(session, dispatch_id, sup_id, s.supervisor, "对其提交外督员情况反馈表")
    if (d.id, sup_id) in repo.feedback_pairs(session, [d.id]):
        raise AlreadyExists(
            "FEEDBACK_ALREADY_SUBMITTED", f"已提交对外督员{member.display_name}的情况反馈表", resource_name=s.dispatch
        )
    return d, member


def _allowed_days(d: wm.Dispatch, plan_row: wm.CertPlan) -> list[dt.date]:
    """The days a supervisor can have entered the venue: the supervised sessions' days, or the window's."""
    if d.form == SupervisionForm.ON_SITE.value:
        selected = dispatch_rules.select_sessions(dispatches.session_windows(plan_row), d.session_ids)
        return sorted({s.start.astimezone(SHANGHAI).date() for s in selected})
    return dispatch_rules.Window(aware(d.window_start), aware(d.window_end)).days()


async def prepare(wf: Workflow, s: FeedbackSubmission) -> PreparedFeedback:
    dispatch_id = api.parse_id(s.dispatch, "dispatches", field="feedback.dispatch")
    sup_id = api.parse_id(s.supervisor, "supervisors", field="feedback.supervisor")
    d, member = await wf.db.read(_submittable, dispatch_id, s, sup_id)
    plan_row = found(await wf.db.read(repo.plan, d.plan_id), f"plans/{d.plan_id}")
    window, now = dispatch_rules.Window(aware(d.window_start), aware(d.window_end)), wf.clock.now()
    tolerance_minutes = int(await wf.parameters.get("timing.session_tolerance_minutes", wf.today()))
    try:
        timing.require_started(window, now, subject=s.dispatch, what="外督员情况反馈表")
    except Refused as e:
        raise as_error(e) from None
    try:
        feedback_rules.validate_feedback(
            s.answers,
            entry=s.entry,
            exit=s.exit,
            allowed_days=_allowed_days(d, plan_row),
            comments=s.comments,
            signed_by=s.signed_by,
            policy=wf.policy,
        )
        if s.entry is not None and s.exit is not None:
            tolerance = dt.timedelta(minutes=tolerance_minutes)  # D20, from the rule set
            timing.check_presence(s.entry, s.exit, window, now, tolerance=tolerance)
    except ProblemsError as e:
        raise as_error(e) from None
    today = wf.today()
    lateness = deadlines.assess_lateness(d.feedback_due, today, calendar=wf.calendar)
    review = None
    a = s.answers
    trigger = await wf.rules.review_trigger(s.supervisor, a.badge_worn, a.duties_performed, a.integrity_kept, today)
    if trigger is not None:
        desc = feedback_rules.review_description(s.answers, member.display_name, s.comments)
        rec = await cases.recommend(wf, CaseSubjectKind.SUPERVISOR, s.supervisor, [trigger], desc)
        review = cases.CaseDraft(
            CaseSubjectKind.SUPERVISOR,
            s.supervisor,
            member.display_name,
            d.district,
            [trigger],
            CaseOrigin.FEEDBACK,
            "",
            [],
            desc,
            rec,
            plan_row.id,
            d.id,
        )
    return PreparedFeedback(s, dispatch_id, sup_id, lateness, review, today)


def _complete(s: FeedbackSubmission) -> tuple[dt.datetime, dt.datetime, tuple[Answer, Answer, Answer]]:
    """The times and the three answers, which prepare() refused to leave out (validate_feedback, D12)."""
    a = s.answers
    if s.entry is None or s.exit is None or a.badge_worn is None or a.duties_performed is None:
        raise ValueError("feedback committed without prepare()")
    if a.integrity_kept is None:
        raise ValueError("feedback committed without prepare()")
    return s.entry, s.exit, (a.badge_worn, a.duties_performed, a.integrity_kept)


async def commit(wf: Workflow, p: PreparedFeedback) -> FeedbackView:
    s, crid = p.submission, p.submission.client_request_id
    now, actor = wf.clock.now(), caller_org()

    def tx(session: Session) -> FeedbackView:
        if (again := by_request(session, crid)) is not None:
            return again
        d, member = _submittable(session, p.dispatch_id, s, p.supervisor_id, lock=True)
        entry, exit_, answers = _complete(s)
        row = repo.insert_feedback(
            session,
            d,
            member,
            entry_time=entry,
            exit_time=exit_,
            badge_worn=answers[0].value,
            duties_performed=answers[1].value,
            integrity_kept=answers[2].value,
            comments=s.comments.strip(),
            signed_by=s.signed_by.strip(),
            now=now,
            today=p.today,
            lateness=p.lateness,
            client_request_id=crid,
            actor=actor,
        )
        if p.review is not None:
            draft = dataclasses.replace(p.review, source=f"feedback/{row.id}")
            repo.link_review_case(session, row, cases.open_in(session, wf, draft, now=now, actor=actor))
        submitted = FeedbackView(row, d, found(repo.plan(session, d.plan_id), f"plans/{d.plan_id}"))
        record_event(
            session,
            type=events.FEEDBACK_SUBMITTED,
            subject=f"feedback/{row.id}",
            payload=ev.FeedbackSubmitted(
                feedback=to_proto_feedback(submitted),
                dispatch=to_proto_dispatch(dispatches.view(session, d)),
                recipients=[events.agency_recipient(session, d.dispatching_agency, "dispatching_agency")],
            ),
        )
        return submitted

    try:
        return await wf.db.write(tx)
    except sa.exc.IntegrityError:  # a concurrent submission won the unique key
        if (done := await wf.db.read(by_request, crid)) is not None:
            return done
        raise AlreadyExists(
            "FEEDBACK_ALREADY_SUBMITTED", "该外督员的情况反馈表已提交", resource_name=s.dispatch
        ) from None


async def submit(wf: Workflow, s: FeedbackSubmission) -> FeedbackView:
    if not s.client_request_id:
        raise InvalidArgument(
            "CLIENT_REQUEST_ID_REQUIRED",
            [FieldViolation("client_request_id", "请提供请求编号以保证重复提交只生效一次")],
        )
    if (done := await wf.db.read(by_request, s.client_request_id)) is not None:
        return done
    return await commit(wf, await prepare(wf, s))


async def get(wf: Workflow, feedback_id: int, name: str) -> FeedbackView:
    def read(session: Session) -> FeedbackView | None:
        f = repo.feedback(session, feedback_id)
        if f is None:
            return None
        d = found(repo.dispatch(session, f.dispatch_id), f"dispatches/{f.dispatch_id}")
        owners.feedback(session, d, name)
        return FeedbackView(f, d, found(repo.plan(session, d.plan_id), f"plans/{d.plan_id}"))

    view = await wf.db.read(read)
    if view is None:
        raise NotFound(name)
    return view
