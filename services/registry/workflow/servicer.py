"""gRPC servicer `bjsv.registry.v1.SupervisionService` (issue #7 — 第十四条, 第十九条–第二十七条): the thin edge of
the supervision workflow. Each RPC parses its request (`convert`), calls one use case and converts the typed
result back; the use cases own their transactions and outbox rows.

Every RPC first adopts the stored test clock (`WorkflowClock.refresh`), so replicas agree on "now"."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bjsv.registry.v1 import supervision_pb2 as pb
from bjsv.registry.v1 import supervision_pb2_grpc
from common import api
from common.clock import SHANGHAI
from common.errors import FailedPrecondition, FieldViolation, InvalidArgument, PreconditionViolation
from common.idempotency import idempotent
from services.registry.domain.workflow.feedback import FeedbackAnswers
from services.registry.workflow import (
    cases,
    complaints,
    declarations,
    dispatches,
    feedback,
    periods,
    plans,
    records,
    status,
)
from services.registry.workflow.context import Workflow
from services.registry.workflow.convert import (
    ANSWER_IN,
    CASE_STATE_IN,
    COMPLAINT_STATE_IN,
    CONFLICT_KIND_IN,
    FORM_IN,
    RUNG_IN,
    SUBJECT_KIND_IN,
    TRIGGER_IN,
    from_proto_plan,
    from_proto_record,
    instant,
    timestamp,
    to_proto_case,
    to_proto_complaint,
    to_proto_declaration,
    to_proto_dispatch,
    to_proto_feedback,
    to_proto_major_problem,
    to_proto_overdue,
    to_proto_plan,
    to_proto_plan_status,
    to_proto_pool_member,
    to_proto_record,
    to_proto_report,
    to_proto_team_finding,
)
from services.registry.workflow.sweep import Sweep

SERVICE_NAME = "bjsv.registry.v1.SupervisionService"
LIST_PLANS = "registry.ListPlans"
LIST_DISPATCHES = "registry.ListDispatches"
LIST_CASES = "registry.ListCases"
LIST_COMPLAINTS = "registry.ListComplaints"
R = TypeVar("R")


def _rpc(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    @functools.wraps(method)
    async def call(self: SupervisionServicer, request: Any, context: Any) -> R:
        await self.wf.clock.refresh()
        return await method(self, request, context)

    return call


def _page(request: Any, listing: str) -> api.Page:
    """An offset page (the listings are filtered in memory / by OFFSET): the token carries the offset, opaque
    and checksummed like every other listing's (common.api), so an edited token is PAGE_TOKEN."""
    page = api.page_request(request.page_size, request.page_token, listing=listing, kind=int)
    return api.Page(page.size, max(page.after or 0, 0))  # a forged negative offset starts at the top


def _next_token(page: api.Page, total: int, listing: str) -> str:
    end = page.after + page.size
    return api.token_after(end if end < total else None, listing=listing)


def _key(request: Any) -> str:
    """The call's idempotency key (request_id, or the deprecated client_request_id), also kept on the row."""
    return request.request_id or request.client_request_id.strip()


def _target(msg: Any, plan: str, session_ids: Any, agency: str) -> dispatches.DispatchTarget:
    return dispatches.DispatchTarget(
        plan,
        list(session_ids),
        agency,
        FORM_IN.get(msg.form),
        instant(msg, "supervision_start_time"),
        instant(msg, "supervision_end_time"),
    )


class SupervisionServicer(supervision_pb2_grpc.SupervisionServiceServicer):
    def __init__(self, wf: Workflow, sweep: Sweep) -> None:
        self.wf = wf
        self.db = wf.db  # idempotency keys (common.idempotency)
        self.sweep = sweep

    # -- plans

    @_rpc
    @idempotent(pb.CreatePlanResponse, "plans", "GetPlan", pb.GetPlanRequest)
    async def CreatePlan(self, request: pb.CreatePlanRequest, context) -> pb.CreatePlanResponse:
        crid = _key(request) or None
        row = await plans.create(self.wf, from_proto_plan(request.plan), crid)
        return pb.CreatePlanResponse(plan=to_proto_plan(row))

    @_rpc
    async def UpdatePlan(self, request: pb.UpdatePlanRequest, context) -> pb.UpdatePlanResponse:
        name = request.plan.name
        plan_id = api.parse_id(name, "plans", field="plan.name")
        row = await plans.update(self.wf, plan_id, name, from_proto_plan(request.plan), request.plan.etag)
        return pb.UpdatePlanResponse(plan=to_proto_plan(row))

    @_rpc
    async def GetPlan(self, request: pb.GetPlanRequest, context) -> pb.GetPlanResponse:
        row = await plans.get(self.wf, api.parse_id(request.name, "plans"), request.name)
        return pb.GetPlanResponse(plan=to_proto_plan(row))

    @_rpc
    async def ListPlans(self, request: pb.ListPlansRequest, context) -> pb.ListPlansResponse:
        page = _page(request, LIST_PLANS)
        rows, total = await plans.list_plans(
            self.wf, institution=request.institution, district=request.district, offset=page.after, limit=page.size
        )
        return pb.ListPlansResponse(
            plans=[to_proto_plan(r) for r in rows],
            next_page_token=_next_token(page, total, LIST_PLANS),
            total_size=total,
        )

    # -- dispatches

    @_rpc
    async def ProposeDispatch(self, request: pb.ProposeDispatchRequest, context) -> pb.ProposeDispatchResponse:
        target = _target(request, request.plan, request.session_ids, request.dispatching_agency)
        p = await dispatches.propose(self.wf, target, request.team_size, request.seed)
        return pb.ProposeDispatchResponse(
            supervisors=p.team,
            seed=p.seed,
            rule_set_version=p.rule_set_version,
            recommended_team_size=p.recommended_team_size,
            findings=[to_proto_team_finding(f, pb.FINDING_SEVERITY_BLOCKING) for f in p.blocking]
            + [to_proto_team_finding(f) for f in p.advisory],
            pool=[to_proto_pool_member(m) for m in p.pool.members],
            pool_size=len(p.pool.members),
            evaluated_count=p.pool.evaluated_count,
            pool_digest=p.pool.digest,
        )

    @_rpc
    @idempotent(pb.CreateDispatchResponse, "dispatches", "GetDispatch", pb.GetDispatchRequest)
    async def CreateDispatch(self, request: pb.CreateDispatchRequest, context) -> pb.CreateDispatchResponse:
        d = request.dispatch
        selection = {pb.TEAM_SELECTION_PROPOSED: True, pb.TEAM_SELECTION_MANUAL: False}.get(request.selection)
        cmd = dispatches.NewDispatch(
            target=_target(d, d.plan, d.session_ids, d.dispatching_agency),
            proposed=selection,
            seed=request.seed,
            team_size=request.team_size,
            supervisors=list(request.supervisors),
            client_request_id=_key(request) or None,
        )
        return pb.CreateDispatchResponse(dispatch=to_proto_dispatch(await dispatches.create(self.wf, cmd)))

    @_rpc
    async def CancelDispatch(self, request: pb.CancelDispatchRequest, context) -> pb.CancelDispatchResponse:
        v = await dispatches.cancel(self.wf, api.parse_id(request.name, "dispatches"), request.name, request.reason)
        return pb.CancelDispatchResponse(dispatch=to_proto_dispatch(v))

    @_rpc
    async def ReplaceDispatchMember(self, request: pb.ReplaceDispatchMemberRequest, context):
        r = dispatches.Replacement(request.name, request.supervisor, request.replacement, request.reason)
        v = await dispatches.replace_member(self.wf, api.parse_id(request.name, "dispatches"), r)
        return pb.ReplaceDispatchMemberResponse(dispatch=to_proto_dispatch(v))

    @_rpc
    async def GetDispatch(self, request: pb.GetDispatchRequest, context) -> pb.GetDispatchResponse:
        v = await dispatches.get(self.wf, api.parse_id(request.name, "dispatches"), request.name)
        return pb.GetDispatchResponse(dispatch=to_proto_dispatch(v))

    @_rpc
    async def ListDispatches(self, request: pb.ListDispatchesRequest, context) -> pb.ListDispatchesResponse:
        page = _page(request, LIST_DISPATCHES)
        views, total = await status.list_dispatches(
            self.wf,
            day=api.parse_optional_date(request.date, "date"),
            agency=request.dispatching_agency,
            plan_id=api.parse_id(request.plan, "plans", field="plan") if request.plan else None,
            include_cancelled=request.include_cancelled,
            overdue_only=request.overdue_only,
            offset=page.after,
            limit=page.size,
            member=request.member.strip(),
        )
        return pb.ListDispatchesResponse(
            dispatches=[to_proto_dispatch(v) for v in views],
            next_page_token=_next_token(page, total, LIST_DISPATCHES),
            total_size=total,
        )

    # -- records

    @_rpc
    @idempotent(pb.SubmitRecordResponse, "records", "GetRecord", pb.GetRecordRequest)
    async def SubmitRecord(self, request: pb.SubmitRecordRequest, context) -> pb.SubmitRecordResponse:
        r = request.record
        s = records.RecordSubmission(r.dispatch, r.submitted_by, from_proto_record(r), _key(request))
        return pb.SubmitRecordResponse(record=to_proto_record(await records.submit(self.wf, s)))

    @_rpc
    @idempotent(pb.CorrectRecordResponse, "records", "GetRecord", pb.GetRecordRequest)
    async def CorrectRecord(self, request: pb.CorrectRecordRequest, context) -> pb.CorrectRecordResponse:
        r = request.record
        c = records.RecordCorrection(
            api.parse_id(request.name, "records"),
            request.name,
            r.submitted_by,
            from_proto_record(r),
            request.reason,
            _key(request),
        )
        return pb.CorrectRecordResponse(record=to_proto_record(await records.correct(self.wf, c)))

    @_rpc
    async def GetRecord(self, request: pb.GetRecordRequest, context) -> pb.GetRecordResponse:
        v = await records.get(self.wf, api.parse_id(request.name, "records"), request.version, request.name)
        return pb.GetRecordResponse(record=to_proto_record(v))

    @_rpc
    async def ListRecordVersions(self, request: pb.ListRecordVersionsRequest, context):
        vs = await records.versions(self.wf, api.parse_id(request.name, "records"), request.name)
        return pb.ListRecordVersionsResponse(versions=[to_proto_record(v) for v in vs])

    # -- feedback

    @_rpc
    @idempotent(pb.SubmitFeedbackResponse, "feedback", "GetFeedback", pb.GetFeedbackRequest)
    async def SubmitFeedback(self, request: pb.SubmitFeedbackRequest, context) -> pb.SubmitFeedbackResponse:
        f = request.feedback
        answers = FeedbackAnswers(
            ANSWER_IN.get(f.badge_worn), ANSWER_IN.get(f.duties_performed), ANSWER_IN.get(f.integrity_kept)
        )
        s = feedback.FeedbackSubmission(
            f.dispatch,
            f.supervisor,
            answers,
            instant(f, "entry_time"),
            instant(f, "exit_time"),
            f.comments,
            f.signed_by,
            _key(request),
        )
        return pb.SubmitFeedbackResponse(feedback=to_proto_feedback(await feedback.submit(self.wf, s)))

    @_rpc
    async def GetFeedback(self, request: pb.GetFeedbackRequest, context) -> pb.GetFeedbackResponse:
        v = await feedback.get(self.wf, api.parse_id(request.name, "feedback"), request.name)
        return pb.GetFeedbackResponse(feedback=to_proto_feedback(v))

    # -- cases

    @_rpc
    @idempotent(pb.OpenCaseResponse, "cases", "GetCase", pb.GetCaseRequest)
    async def OpenCase(self, request: pb.OpenCaseRequest, context) -> pb.OpenCaseResponse:
        c = request.penalty_case
        new = cases.NewCase(
            SUBJECT_KIND_IN.get(c.subject_kind),
            c.subject,
            [TRIGGER_IN.get(t) for t in c.triggers],
            c.description,
            c.plan,
            c.dispatch,
            c.district,
            c.source,
            list(c.item_numbers),
            _key(request),
        )
        return pb.OpenCaseResponse(penalty_case=to_proto_case(await cases.open_case(self.wf, new)))

    @_rpc
    async def RecordCaseDecision(self, request: pb.RecordCaseDecisionRequest, context):
        d = request.decision
        deadline = api.parse_optional_date(d.correction_deadline, "decision.correction_deadline")
        dec = cases.Decision(RUNG_IN.get(d.rung), d.official, d.official_org, d.note, deadline)
        v = await cases.decide(self.wf, api.parse_id(request.name, "cases"), request.name, dec)
        return pb.RecordCaseDecisionResponse(penalty_case=to_proto_case(v))

    @_rpc
    async def RecordCorrection(self, request: pb.RecordCorrectionRequest, context) -> pb.RecordCorrectionResponse:
        v = await cases.record_correction(self.wf, api.parse_id(request.name, "cases"), request.name, request.note)
        return pb.RecordCorrectionResponse(penalty_case=to_proto_case(v))

    @_rpc
    async def GetCase(self, request: pb.GetCaseRequest, context) -> pb.GetCaseResponse:
        v = await cases.get(self.wf, api.parse_id(request.name, "cases"), request.name)
        return pb.GetCaseResponse(penalty_case=to_proto_case(v))

    @_rpc
    async def ListCases(self, request: pb.ListCasesRequest, context) -> pb.ListCasesResponse:
        page = _page(request, LIST_CASES)
        views, total = await cases.list_cases(
            self.wf,
            subject=request.subject,
            state=CASE_STATE_IN.get(request.state),
            district=request.district,
            plan_id=api.parse_id(request.plan, "plans", field="plan") if request.plan else None,
            offset=page.after,
            limit=page.size,
        )
        return pb.ListCasesResponse(
            cases=[to_proto_case(v) for v in views],
            next_page_token=_next_token(page, total, LIST_CASES),
            total_size=total,
        )

    # -- periods and status

    @_rpc
    async def ClosePeriod(self, request: pb.ClosePeriodRequest, context) -> pb.ClosePeriodResponse:
        closed = await periods.close(self.wf, api.parse_date(request.date, "date"), request.include_empty_districts)
        reports = [to_proto_report(r, self.wf.policy.city_centre) for r in closed.reports]
        return pb.ClosePeriodResponse(reports=reports, newly_closed=closed.newly_closed)

    @_rpc
    async def GetDistrictReport(self, request: pb.GetDistrictReportRequest, context):
        district, period_key = api.parse_name(request.name, "reports", segments=2).split("/")
        row = await periods.get_report(self.wf, district, period_key, request.name)
        return pb.GetDistrictReportResponse(report=to_proto_report(row, self.wf.policy.city_centre))

    @_rpc
    async def GetPlanStatus(self, request: pb.GetPlanStatusRequest, context) -> pb.GetPlanStatusResponse:
        wanted = [(api.parse_id(request.plan, "plans", field="plan"), request.plan)]
        return to_proto_plan_status((await status.plan_statuses(self.wf, wanted))[0])

    @_rpc
    async def BatchGetPlanStatuses(
        self, request: pb.BatchGetPlanStatusesRequest, context
    ) -> pb.BatchGetPlanStatusesResponse:
        wanted = [(api.parse_id(n, "plans", field=f"plans[{i}]"), n) for i, n in enumerate(request.plans)]
        statuses = await status.plan_statuses(self.wf, wanted)
        return pb.BatchGetPlanStatusesResponse(statuses=[to_proto_plan_status(s) for s in statuses])

    @_rpc
    async def ListOverdue(self, request: pb.ListOverdueRequest, context) -> pb.ListOverdueResponse:
        items, today = await status.list_overdue(self.wf, agency=request.dispatching_agency, district=request.district)
        return pb.ListOverdueResponse(items=[to_proto_overdue(o) for o in items], as_of_date=today.isoformat())

    # -- operations

    async def RunSweep(self, request: pb.RunSweepRequest, context) -> pb.RunSweepResponse:
        r = await self.sweep.run()
        return pb.RunSweepResponse(
            escalated_cases=r.escalated_cases, closed_reports=r.closed_reports, as_of_date=r.as_of_date.isoformat()
        )

    @_rpc
    async def GetSupervisionClock(self, request: pb.GetSupervisionClockRequest, context):
        return pb.GetSupervisionClockResponse(now=timestamp(self.wf.clock.now()), mode=self.wf.clock.mode)

    async def SetSupervisionClock(self, request: pb.SetSupervisionClockRequest, context):
        if not self.wf.clock.settable:
            raise FailedPrecondition(
                "TEST_CLOCK_DISABLED",
                [
                    PreconditionViolation(
                        "bjsv.admin.clock", "clock", "未启用测试时钟（BJSV_SUPERVISION_TEST_CLOCK），不能调整时钟"
                    )
                ],
            )
        if request.reset:
            await self.wf.clock.fix(None)
        elif request.HasField("fixed_time"):
            await self.wf.clock.fix(request.fixed_time.ToDatetime(tzinfo=SHANGHAI))
        else:
            raise InvalidArgument("CLOCK_VALUE_REQUIRED", [FieldViolation("fixed_time", "请提供时间或 reset")])
        return pb.SetSupervisionClockResponse(now=timestamp(self.wf.clock.now()), mode=self.wf.clock.mode)

    # -- 第十六条 declarations, 第二十二条(九)(十) complaints and major problems

    @_rpc
    async def DeclareConflicts(self, request: pb.DeclareConflictsRequest, context) -> pb.DeclareConflictsResponse:
        d = request.declaration
        conflicts = [(CONFLICT_KIND_IN.get(c.kind, ""), c.counterpart, c.description) for c in d.conflicts]
        row = await declarations.declare(self.wf, declarations.Declaration(d.dispatch, d.supervisor, conflicts))
        return pb.DeclareConflictsResponse(declaration=to_proto_declaration(row))

    @_rpc
    async def ReceiveComplaint(self, request: pb.ReceiveComplaintRequest, context) -> pb.ReceiveComplaintResponse:
        c = request.complaint
        new = complaints.ComplaintIn(c.source, c.subject, c.content, request.client_request_id.strip())
        return pb.ReceiveComplaintResponse(complaint=to_proto_complaint(await complaints.receive(self.wf, new)))

    @_rpc
    async def RecordComplaintHandling(self, request: pb.RecordComplaintHandlingRequest, context):
        h = complaints.Handling(request.name, request.handling, request.result, request.penalty_case, request.close)
        row = await complaints.handle(self.wf, api.parse_id(request.name, "complaints"), h)
        return pb.RecordComplaintHandlingResponse(complaint=to_proto_complaint(row))

    @_rpc
    async def GetComplaint(self, request: pb.GetComplaintRequest, context) -> pb.GetComplaintResponse:
        row = await complaints.get(self.wf, api.parse_id(request.name, "complaints"), request.name)
        return pb.GetComplaintResponse(complaint=to_proto_complaint(row))

    @_rpc
    async def ListComplaints(self, request: pb.ListComplaintsRequest, context) -> pb.ListComplaintsResponse:
        page = _page(request, LIST_COMPLAINTS)
        state = COMPLAINT_STATE_IN.get(request.state, "")
        f = complaints.ComplaintFilter(request.district.strip(), state, request.subject.strip(), request.query)
        rows, total = await complaints.list_(self.wf, f, offset=page.after, limit=page.size)
        return pb.ListComplaintsResponse(
            complaints=[to_proto_complaint(r) for r in rows],
            next_page_token=_next_token(page, total, LIST_COMPLAINTS),
            total_size=total,
        )

    @_rpc
    async def ReportMajorProblem(self, request: pb.ReportMajorProblemRequest, context):
        r = request.report
        new = complaints.MajorProblemIn(r.dispatch, r.reported_by, r.findings, r.suggestions,
                                        request.client_request_id.strip())  # fmt: skip
        row = await complaints.report_major_problem(self.wf, new)
        return pb.ReportMajorProblemResponse(report=to_proto_major_problem(row))
