"""SupervisionService over real gRPC with the real rules service: deadlines across holidays (D5), recusal
(第十六条), Annex 3 validation/idempotency/corrections (第二十三条, D11), Annex 4 validation (D12), the case
ladder (第二十六条, D13) and period close (D10)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import grpc
import nats
import pytest
import wf_helpers as h
from wf_helpers import error_reason

from bjsv.events.v1 import envelope_pb2
from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import supervision_events_pb2 as ev
from bjsv.registry.v1 import supervision_pb2 as spb
from common import pki
from common.clock import SHANGHAI
from supervisionctl.natsd import free_port
from supervisionctl.stack import Stack, StackConfig

D = dt.date


def eventually_events(url: str, type_: str, subject: str, timeout: float = 15.0) -> list:
    """Payloads of the events of a type about a subject on BJSV_REGISTRY, once the outbox relay published them."""

    async def read() -> list:
        nc = await nats.connect(url, tls=pki.ssl_context())
        try:
            js = nc.jetstream()
            info = await js.stream_info("BJSV_REGISTRY")
            out = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                env = envelope_pb2.EventEnvelope()
                env.ParseFromString((await js.get_msg("BJSV_REGISTRY", seq)).data)
                if env.type == type_ and env.subject == subject:
                    msg = ev.ImmediateReportRaised() if type_ == "immediate_report.raised" else None
                    env.payload.Unpack(msg)
                    out.append(msg)
            return out
        finally:
            await nc.close()

    deadline = time.monotonic() + timeout
    while True:
        found = asyncio.run(read())
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.fixture(scope="module")
def world(clients: h.Clients) -> dict:
    c = clients
    inst = h.institution(c, "1100012001", "北京某某电力技术有限公司", "08")
    sups = {n: h.supervisor(c, n) for n in ("张督导", "王督导", "赵督导", "钱督导")}
    return {"inst": inst, "sups": sups}


def make_plan(c: h.Clients, world: dict, day: D, **kw) -> spb.Plan:
    return c.sv.CreatePlan(
        spb.CreatePlanRequest(plan=h.plan_msg(world["inst"], day, **kw), client_request_id=h.request_id("plan")),
        metadata=h.md(h.HAIDIAN),
    ).plan


def dispatch(
    c: h.Clients,
    plan: spb.Plan,
    names: list[str],
    world: dict,
    *,
    form=spb.SUPERVISION_FORM_ON_SITE,
    start=None,
    end=None,
    sessions=(),
) -> spb.Dispatch:
    d = spb.Dispatch(plan=plan.name, dispatching_agency="agencies/08", form=form, session_ids=list(sessions))
    if start is not None:
        d.supervision_start_time.CopyFrom(start)
        d.supervision_end_time.CopyFrom(end)
    req = spb.CreateDispatchRequest(
        dispatch=d,
        selection=spb.TEAM_SELECTION_MANUAL,
        supervisors=[world["sups"][n][0] for n in names],
        client_request_id=h.request_id("dispatch"),
    )
    d = c.sv.CreateDispatch(req, metadata=h.md(h.HAIDIAN)).dispatch
    h.declare(c, d.name, *req.supervisors)  # 第十六条: before acting
    return d


def test_record_due_five_working_days_after_supervision_across_national_day_art23_d5(clients, world):
    clients.set_clock(dt.datetime(2025, 9, 29, 9, tzinfo=SHANGHAI))  # on-site: before the session (第二十一条)
    plan = make_plan(clients, world, D(2025, 9, 30))
    d = dispatch(clients, plan, ["张督导", "王督导"], world)
    assert (d.record_due_date, d.feedback_due_date) == ("2025-10-14", "2025-10-14")
    # 250 candidates: D7 recommends a third supervisor (第二十条); stored as advice, not refused.
    assert any("第二十条" in f.article for f in d.advisory_findings), d.advisory_findings
    assert d.selection == spb.TEAM_SELECTION_MANUAL and len(d.members) == 2


def test_record_due_counts_the_spring_festival_make_up_saturday_art23_d5(clients, world):
    clients.set_clock(dt.datetime(2026, 2, 12, 9, tzinfo=SHANGHAI))
    plan = make_plan(clients, world, D(2026, 2, 13))
    d = dispatch(clients, plan, ["张督导", "王督导"], world)
    assert d.record_due_date == "2026-02-27"


def test_deadline_in_uncovered_2027_is_refused_with_an_explicit_calendar_error_d5(clients, world):
    clients.set_clock(dt.datetime(2026, 12, 27, 9, tzinfo=SHANGHAI))
    plan = make_plan(clients, world, D(2026, 12, 28))
    with pytest.raises(grpc.RpcError) as e:
        dispatch(clients, plan, ["张督导", "王督导"], world)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    reason, texts = error_reason(e.value)
    assert reason == "CALENDAR_NOT_COVERED"
    assert any("2027年法定工作日历尚未配置" in t and "第二十三条" in t for t in texts), texts


def test_deadline_in_2027_uses_the_operator_calendar_when_configured_d5(clients, world, wf_stack, tmp_path):
    cal = tmp_path / "calendar-2027.json"
    cal.write_text(json.dumps({"2027": {"holidays": ["2027-01-01"], "workdays": []}}))
    cfg = wf_stack.config
    second = StackConfig(
        data_dir=cfg.data_dir,
        nats_port=cfg.nats_port,
        external_nats_url=cfg.nats_url,
        ports={**cfg.ports, "registry": free_port()},
        extra_env=h.workflow_env(BJSV_CALENDAR_FILE=str(cal), BJSV_RULES_TARGET=cfg.target("rules")),
    )
    other = Stack(second, services=("registry",))
    other.start(timeout=60)
    try:
        c2 = h.Clients(second.target("registry"))
        c2.set_clock(dt.datetime(2026, 12, 27, 9, tzinfo=SHANGHAI))
        plan = make_plan(c2, world, D(2026, 12, 28))
        d = dispatch(c2, plan, ["张督导", "王督导"], world)
        assert d.record_due_date == "2027-01-05"
        c2.close()
    finally:
        other.stop()


def test_supervisor_who_examines_in_the_same_session_is_refused_art16(clients, world):
    qian = world["sups"]["钱督导"][0]
    clients.set_clock(dt.datetime(2026, 3, 9, 9, tzinfo=SHANGHAI))
    plan = make_plan(clients, world, D(2026, 3, 10), examiners=[h.person("钱督导", sup=qian)])
    with pytest.raises(grpc.RpcError) as e:
        dispatch(clients, plan, ["张督导", "钱督导"], world, sessions=["S1"])
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    reason, texts = error_reason(e.value)
    assert reason == "TEAM_CHECK_FAILED"
    assert any("第十六条" in t or "同场次" in t for t in texts), texts
    # The other session has other examiners: the same team may supervise it.
    d = dispatch(clients, plan, ["张督导", "钱督导"], world, sessions=["S2"])
    assert d.session_ids == ["S2"]


def submit(c, d, sup, crid, no=None, n=17, sign="2026-03-10"):
    rec = spb.SupervisionRecord(
        dispatch=d.name,
        submitted_by=sup,
        answers=h.answers(n, no),
        problems="见备注",
        supervisor_signatures=["张督导", "王督导"],
        institution_head_signature="李主任",
        sign_date=sign,
    )
    # the record is filled in and submitted by the dispatched supervisor themself (第二十三条)
    return c.sv.SubmitRecord(
        spb.SubmitRecordRequest(record=rec, client_request_id=crid), metadata=h.md((sup, "supervisor"))
    )


def test_record_validation_idempotency_correction_and_lateness_art23_d11(clients, world):
    c, zhang = clients, world["sups"]["张督导"][0]
    c.set_clock(dt.datetime(2026, 3, 9, 9, tzinfo=SHANGHAI))
    plan = make_plan(c, world, D(2026, 3, 10))
    d = dispatch(c, plan, ["张督导", "王督导"], world)
    c.set_clock(dt.datetime(2026, 3, 20, 10, tzinfo=SHANGHAI))  # due 2026-03-17 → 3 days late
    with pytest.raises(grpc.RpcError) as e:
        submit(c, d, zhang, "bad", no={12: " "})
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any(t.startswith("record.answers[11].remark|") for t in error_reason(e.value)[1])
    first = submit(c, d, zhang, "rec-1", no={12: "两名考务人员未佩带工作证卡"}).record
    again = submit(c, d, zhang, "rec-1", no={12: "两名考务人员未佩带工作证卡"}).record
    assert again.name == first.name and again.version == 1 and again.submit_time == first.submit_time
    assert (first.late, first.due_date, first.late_working_days, first.late_calendar_days) == (True, "2026-03-17", 3, 3)
    assert [(f.item_number, f.item_text) for f in first.findings] == [(12, "现场工作人员全程佩带相应工作证卡")]
    assert first.findings[0].opened_case == ""  # D14 opens cases for records-review item 12 only
    assert first.institution_name == "北京某某电力技术有限公司"
    assert first.certification_mode_text == "理论知识考试、技能操作考核"
    with pytest.raises(grpc.RpcError) as e:
        submit(c, d, zhang, "rec-2")
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    corrected = c.sv.CorrectRecord(spb.CorrectRecordRequest(
        name=first.name, reason="补充第17项影像资料情况", client_request_id="rec-fix-1",
        record=spb.SupervisionRecord(submitted_by=zhang, answers=h.answers(17, {12: "同上", 17: "无录像"}),
                                     supervisor_signatures=["张督导"], sign_date="2026-03-20")),
        metadata=h.md(h.HAIDIAN)).record  # fmt: skip
    assert (corrected.version, corrected.correction_reason) == (2, "补充第17项影像资料情况")
    versions = c.sv.ListRecordVersions(spb.ListRecordVersionsRequest(name=first.name)).versions
    assert [v.version for v in versions] == [1, 2]
    assert [f.item_number for f in versions[0].findings] == [12]
    assert [f.item_number for f in versions[1].findings] == [12, 17]
    assert c.sv.GetRecord(spb.GetRecordRequest(name=first.name)).record.version == 2


def test_feedback_exit_must_follow_entry_on_the_supervised_day_d12(clients, world):
    c = clients
    c.set_clock(dt.datetime(2026, 3, 10, 9, tzinfo=SHANGHAI))
    plan = make_plan(c, world, D(2026, 3, 11))
    d = dispatch(c, plan, ["张督导", "王督导"], world)
    c.set_clock(dt.datetime(2026, 3, 12, 9, tzinfo=SHANGHAI))
    fb = spb.SupervisorFeedback(
        dispatch=d.name,
        supervisor=world["sups"]["王督导"][0],
        entry_time=h.at(D(2026, 3, 11), 12),
        exit_time=h.at(D(2026, 3, 11), 8),
        badge_worn=spb.ANSWER_VALUE_YES,
        duties_performed=spb.ANSWER_VALUE_YES,
        integrity_kept=spb.ANSWER_VALUE_YES,
        signed_by="李主任",
    )
    with pytest.raises(grpc.RpcError) as e:
        c.sv.SubmitFeedback(spb.SubmitFeedbackRequest(feedback=fb, client_request_id="fb-bad"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any("离场时间应晚于进场时间" in t for t in error_reason(e.value)[1])
    fb.exit_time.CopyFrom(h.at(D(2026, 3, 11), 17))
    ok = c.sv.SubmitFeedback(spb.SubmitFeedbackRequest(feedback=fb, client_request_id="fb-ok")).feedback
    assert (ok.late, ok.review_case, ok.supervisor_name) == (False, "", "王督导")
    status = c.sv.GetPlanStatus(spb.GetPlanStatusRequest(plan=plan.name))
    assert list(status.dispatches[0].feedback_missing) == [world["sups"]["张督导"][0]]


def test_period_cannot_close_before_it_ends_d10(clients):
    clients.set_clock(dt.datetime(2026, 3, 15, 23, tzinfo=SHANGHAI))
    with pytest.raises(grpc.RpcError) as e:
        clients.sv.ClosePeriod(spb.ClosePeriodRequest(date="2026-03-02"))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(e.value)[0] == "PERIOD_NOT_ENDED"


def test_only_the_city_centre_decides_an_institution_case_art26_d13(clients, world, wf_stack):
    c = clients
    c.set_clock(dt.datetime(2026, 3, 16, 9, tzinfo=SHANGHAI))
    case = c.sv.OpenCase(spb.OpenCaseRequest(penalty_case=spb.PenaltyCase(
        subject_kind=spb.CASE_SUBJECT_KIND_INSTITUTION, subject=world["inst"],
        triggers=[spb.CASE_TRIGGER_FALSIFICATION], description="伪造考生签到表"), client_request_id="case-f"),
        metadata=h.md(h.CITY)).penalty_case  # fmt: skip
    # (四) is serious by default: second rung and an immediate report (D13, 第二十四条).
    assert case.recommendation.rung == spb.PENALTY_RUNG_DISCIPLINARY_RECOMMENDATION
    assert case.immediate_report_raised
    reports = eventually_events(wf_stack.config.nats_url, "immediate_report.raised", case.name)
    (report,) = reports
    assert report.reporting_agency == "agencies/08" and "第二十四条" in report.summary
    assert [(r.party, r.role) for r in report.recipients] == [("agencies/A", "city_centre")]
    decision = spb.CaseDecision(rung=spb.PENALTY_RUNG_DISCIPLINARY_RECOMMENDATION, official="市中心 刘主任")
    with pytest.raises(grpc.RpcError) as e:
        c.sv.RecordCaseDecision(
            spb.RecordCaseDecisionRequest(name=case.name, decision=decision), metadata=h.md(h.HAIDIAN)
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    done = c.sv.RecordCaseDecision(
        spb.RecordCaseDecisionRequest(name=case.name, decision=decision), metadata=h.md(h.CITY)
    ).penalty_case
    assert done.state == spb.CASE_STATE_CLOSED and done.decisions[0].official == "市中心 刘主任"


def test_suspension_decided_under_art27_suspends_the_appointment_and_blocks_dispatch(clients, world):
    c = clients
    sun = h.supervisor(c, "孙督导")[0]
    c.set_clock(dt.datetime(2026, 3, 16, 10, tzinfo=SHANGHAI))
    opened = spb.PenaltyCase(
        subject_kind=spb.CASE_SUBJECT_KIND_SUPERVISOR,
        subject=sun,
        description="擅自离场",
        triggers=[spb.CASE_TRIGGER_SUPERVISOR_DUTY_FAILURE],
    )
    req = spb.OpenCaseRequest(penalty_case=opened, client_request_id="case-sun")
    case = c.sv.OpenCase(req, metadata=h.md(h.HAIDIAN)).penalty_case
    assert case.recommendation.article == "第二十七条" and case.district == "08"
    decision = spb.CaseDecision(rung=spb.PENALTY_RUNG_SUPERVISOR_SUSPENSION, official="海淀区鉴定所 周所长")
    done = c.sv.RecordCaseDecision(
        spb.RecordCaseDecisionRequest(name=case.name, decision=decision), metadata=h.md(h.HAIDIAN)
    ).penalty_case
    assert done.state == spb.CASE_STATE_CLOSED
    sup = c.registry.GetSupervisor(rpb.GetSupervisorRequest(name=sun)).supervisor
    assert sup.status == rpb.APPOINTMENT_STATUS_SUSPENDED
    plan = make_plan(c, world, D(2026, 3, 20))
    with pytest.raises(grpc.RpcError) as e:
        c.sv.CreateDispatch(spb.CreateDispatchRequest(
            dispatch=spb.Dispatch(plan=plan.name, dispatching_agency="agencies/08", form=spb.SUPERVISION_FORM_ON_SITE),
            selection=spb.TEAM_SELECTION_MANUAL, supervisors=[world["sups"]["张督导"][0], sun],
            client_request_id="dispatch-sun"), metadata=h.md(h.HAIDIAN))  # fmt: skip
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(e.value)[0] == "TEAM_CHECK_FAILED"


def test_replace_and_cancel_keep_the_reason_and_recheck_the_team_art14_art20(clients, world):
    c, s = clients, world["sups"]
    c.set_clock(dt.datetime(2026, 4, 1, 9, tzinfo=SHANGHAI))
    plan = make_plan(c, world, D(2026, 4, 8), candidates=120)
    d = dispatch(c, plan, ["张督导", "王督导"], world)
    with pytest.raises(grpc.RpcError) as e:
        c.sv.ReplaceDispatchMember(
            spb.ReplaceDispatchMemberRequest(
                name=d.name, supervisor=s["王督导"][0], replacement=s["赵督导"][0], reason=""
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    replaced = c.sv.ReplaceDispatchMember(spb.ReplaceDispatchMemberRequest(
        name=d.name, supervisor=s["王督导"][0], replacement=s["赵督导"][0], reason="王督导临时请假"),
        metadata=h.md(h.HAIDIAN)).dispatch  # fmt: skip
    states = {m.supervisor: (m.state, m.replaced_by, m.replace_reason) for m in replaced.members}
    assert states[s["王督导"][0]] == (spb.MEMBER_STATE_REPLACED, s["赵督导"][0], "王督导临时请假")
    assert states[s["赵督导"][0]][0] == spb.MEMBER_STATE_ACTIVE
    assert not replaced.advisory_findings  # 120 candidates: no advice for a third supervisor (D7)
    cancelled = c.sv.CancelDispatch(
        spb.CancelDispatchRequest(name=d.name, reason="评价计划延期"), metadata=h.md(h.HAIDIAN)
    ).dispatch
    assert (cancelled.state, cancelled.cancel_reason) == (spb.DISPATCH_STATE_CANCELLED, "评价计划延期")
    listed = c.sv.ListDispatches(spb.ListDispatchesRequest(plan=plan.name)).dispatches
    assert listed == []
    listed = c.sv.ListDispatches(spb.ListDispatchesRequest(plan=plan.name, include_cancelled=True)).dispatches
    assert [x.name for x in listed] == [d.name]


def test_todays_dispatches_overdue_list_and_plan_update_art23_d5(clients, world, wf_stack):
    c = clients
    c.set_clock(dt.datetime(2026, 5, 6, 9, tzinfo=SHANGHAI))
    plan = make_plan(c, world, D(2026, 5, 7), title="2026年第二期焊工（三级）职业技能等级认定")
    d = dispatch(c, plan, ["张督导", "王督导"], world, sessions=["S2"])
    assert d.record_due_date == "2026-05-13"  # 2026-05-09 (Saturday) is a make-up working day
    today = c.sv.ListDispatches(spb.ListDispatchesRequest(date="2026-05-07", dispatching_agency="agencies/08"))
    assert d.name in [x.name for x in today.dispatches]
    assert c.sv.ListDispatches(spb.ListDispatchesRequest(date="2026-05-08", plan=plan.name)).dispatches == []
    c.set_clock(dt.datetime(2026, 5, 18, 9, tzinfo=SHANGHAI))  # 3 working days after the due date
    overdue = [i for i in c.sv.ListOverdue(spb.ListOverdueRequest(district="08")).items if i.dispatch == d.name]
    assert sorted((i.kind, i.supervisor, i.overdue_working_days) for i in overdue) == [
        ("feedback", world["sups"]["张督导"][0], 3),
        ("feedback", world["sups"]["王督导"][0], 3),
        ("record", "", 3),
    ]
    od = c.sv.ListDispatches(spb.ListDispatchesRequest(plan=plan.name, overdue_only=True)).dispatches
    assert [x.name for x in od] == [d.name]
    status = c.sv.GetPlanStatus(spb.GetPlanStatusRequest(plan=plan.name))
    assert status.dispatches[0].record_overdue and status.dispatches[0].feedback_overdue
    # The operator CLI shows the same.
    from typer.testing import CliRunner

    from supervisionctl.supervision_cmds import app

    env = {"BJSV_REGISTRY_TARGET": wf_stack.config.target("registry"), "COLUMNS": "240"}
    out = CliRunner().invoke(app, ["overdue", "--district", "08", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert d.name in out.output and '"overdue_working_days": 3' in out.output
    out = CliRunner().invoke(app, ["today", "--date", "2026-05-07"], env=env)
    assert out.exit_code == 0 and d.name in out.output, out.output
    out = CliRunner().invoke(app, ["plan-status", plan.name], env=env)
    assert out.exit_code == 0 and "焊工" in out.output, out.output
    out = CliRunner().invoke(app, ["plan-status", "plans/99999"], env=env)
    assert out.exit_code == 1 and "NOT_FOUND" in out.output
    # Optimistic concurrency on plan updates.
    changed = spb.Plan()
    changed.CopyFrom(plan)
    changed.candidate_count = 260
    updated = c.sv.UpdatePlan(spb.UpdatePlanRequest(plan=changed)).plan
    assert (updated.candidate_count, updated.etag) == (260, "2")
    with pytest.raises(grpc.RpcError) as e:
        c.sv.UpdatePlan(spb.UpdatePlanRequest(plan=changed))  # stale etag "1"
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_batch_plan_status_answers_what_get_plan_status_answers_in_the_order_asked_all_or_nothing_art23(clients, world):
    c = clients
    c.set_clock(dt.datetime(2026, 6, 1, 9, tzinfo=SHANGHAI))
    first = make_plan(c, world, D(2026, 6, 3), title="2026年第三期焊工（三级）职业技能等级认定")
    second = make_plan(c, world, D(2026, 6, 4), title="2026年第四期焊工（三级）职业技能等级认定")
    dispatch(c, first, ["张督导", "王督导"], world, sessions=["S1"])
    dispatch(c, second, ["赵督导", "钱督导"], world, sessions=["S1"])
    dispatch(c, second, ["张督导", "王督导"], world, sessions=["S2"])
    c.set_clock(dt.datetime(2026, 6, 20, 9, tzinfo=SHANGHAI))  # records and feedback overdue
    one_by_one = {p.name: c.sv.GetPlanStatus(spb.GetPlanStatusRequest(plan=p.name)) for p in (first, second)}
    asked = [second.name, first.name, second.name]
    batch = c.sv.BatchGetPlanStatuses(spb.BatchGetPlanStatusesRequest(plans=asked))
    assert list(batch.statuses) == [one_by_one[n] for n in asked]
    assert [len(s.dispatches) for s in batch.statuses] == [2, 1, 2]
    assert all(d.record_overdue and d.feedback_overdue for s in batch.statuses for d in s.dispatches)
    assert not c.sv.BatchGetPlanStatuses(spb.BatchGetPlanStatusesRequest()).statuses
    with pytest.raises(grpc.RpcError) as e:  # one plan missing fails the whole call (AIP-231)
        c.sv.BatchGetPlanStatuses(spb.BatchGetPlanStatusesRequest(plans=[first.name, "plans/99999"]))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        c.sv.BatchGetPlanStatuses(spb.BatchGetPlanStatusesRequest(plans=[first.name, "dispatches/1"]))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "plans[1]" in e.value.details() or any("plans[1]" in t for t in error_reason(e.value)[1])


def test_institution_dispatches_its_internal_supervisors_like_external_ones_art14_art25(clients, world):
    c, inst = clients, world["inst"]
    mine = [h.internal_supervisor(c, n, inst) for n in ("陈内督", "林内督")]
    c.set_clock(dt.datetime(2026, 6, 1, 9, tzinfo=SHANGHAI))
    plan = make_plan(c, world, D(2026, 6, 2), candidates=60)
    who = (inst, "institution")
    req = spb.CreateDispatchRequest(
        dispatch=spb.Dispatch(plan=plan.name, dispatching_agency=inst, form=spb.SUPERVISION_FORM_ON_SITE),
        selection=spb.TEAM_SELECTION_MANUAL, supervisors=mine, client_request_id="internal-1")  # fmt: skip
    d = c.sv.CreateDispatch(req, metadata=h.md(who)).dispatch
    h.declare(c, d.name, *mine)
    assert d.scope == spb.DISPATCH_SCOPE_INTERNAL and d.record_due_date == "2026-06-09"
    # An institution cannot dispatch external supervisors (第十四条, D8).
    with pytest.raises(grpc.RpcError) as e:
        c.sv.CreateDispatch(spb.CreateDispatchRequest(
            dispatch=spb.Dispatch(plan=plan.name, dispatching_agency=inst, form=spb.SUPERVISION_FORM_ON_SITE),
            selection=spb.TEAM_SELECTION_MANUAL, supervisors=[world["sups"]["张督导"][0], world["sups"]["王督导"][0]],
            client_request_id="internal-2"), metadata=h.md(who))  # fmt: skip
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Internal supervisors fill the same record (第二十五条); Annex 4 is about external supervisors only.
    c.set_clock(dt.datetime(2026, 6, 3, 9, tzinfo=SHANGHAI))
    rec = submit(c, d, mine[0], "internal-rec", sign="2026-06-02").record
    assert rec.version == 1 and not rec.findings
    fb = spb.SupervisorFeedback(
        dispatch=d.name,
        supervisor=mine[1],
        entry_time=h.at(D(2026, 6, 2), 8),
        exit_time=h.at(D(2026, 6, 2), 18),
        badge_worn=spb.ANSWER_VALUE_YES,
        duties_performed=spb.ANSWER_VALUE_YES,
        integrity_kept=spb.ANSWER_VALUE_YES,
        signed_by="李主任",
    )
    with pytest.raises(grpc.RpcError) as e:
        c.sv.SubmitFeedback(spb.SubmitFeedbackRequest(feedback=fb, client_request_id="internal-fb"))
    assert error_reason(e.value)[0] == "FEEDBACK_EXTERNAL_ONLY"


def test_correction_recorded_before_the_deadline_closes_the_case_and_nothing_escalates_art26(clients, world):
    c = clients
    inst = h.institution(c, "1100013002", "北京某某职业技能培训学校", "05")  # no case history (D13 repeats climb)
    c.set_clock(dt.datetime(2026, 7, 1, 9, tzinfo=SHANGHAI))
    opened = spb.PenaltyCase(
        subject_kind=spb.CASE_SUBJECT_KIND_INSTITUTION,
        subject=inst,
        triggers=[spb.CASE_TRIGGER_REFUSED_IMPROVEMENT],
        description="未按督导意见整改考场布置",
    )
    case = c.sv.OpenCase(
        spb.OpenCaseRequest(penalty_case=opened, client_request_id="case-fix"), metadata=h.md(h.CITY)
    ).penalty_case
    assert case.recommendation.sanction_text == "通报批评并责令改正" and not case.immediate_report_raised
    decision = spb.CaseDecision(
        rung=spb.PENALTY_RUNG_CRITICISM_AND_CORRECTION, official="刘主任", correction_deadline="2026-07-10"
    )
    c.sv.RecordCaseDecision(spb.RecordCaseDecisionRequest(name=case.name, decision=decision), metadata=h.md(h.CITY))
    c.set_clock(dt.datetime(2026, 7, 9, 9, tzinfo=SHANGHAI))
    fixed = c.sv.RecordCorrection(
        spb.RecordCorrectionRequest(name=case.name, note="已重新布置考场并报送照片"), metadata=h.md(h.CITY)
    ).penalty_case
    assert fixed.state == spb.CASE_STATE_CLOSED and fixed.correction_note == "已重新布置考场并报送照片"
    c.set_clock(dt.datetime(2026, 7, 20, 9, tzinfo=SHANGHAI))
    sweep = c.sv.RunSweep(spb.RunSweepRequest(), metadata=h.md(h.OPERATOR))
    assert case.name not in sweep.escalated_cases
    assert case.district == "05"
    listed = c.sv.ListCases(spb.ListCasesRequest(subject=inst, state=spb.CASE_STATE_CLOSED)).cases
    assert case.name in [x.name for x in listed]


def test_concurrent_submissions_create_exactly_one_record_art23(clients, world):
    from concurrent.futures import ThreadPoolExecutor

    c, zhang, wang = clients, world["sups"]["张督导"][0], world["sups"]["王督导"][0]
    c.set_clock(dt.datetime(2026, 8, 3, 9, tzinfo=SHANGHAI))
    plan = make_plan(c, world, D(2026, 8, 4), candidates=40)
    d = dispatch(c, plan, ["张督导", "王督导"], world)
    c.set_clock(dt.datetime(2026, 8, 5, 9, tzinfo=SHANGHAI))

    def attempt(i: int):
        try:
            crid = "race-same" if i % 2 == 0 else f"race-{i}"
            return submit(c, d, zhang if i % 2 == 0 else wang, crid, sign="2026-08-04").record.name
        except grpc.RpcError as e:
            return e.code()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    names = {r for r in results if isinstance(r, str)}
    assert len(names) == 1, results
    assert set(results) - names <= {grpc.StatusCode.ALREADY_EXISTS}
    (name,) = names
    assert [v.version for v in c.sv.ListRecordVersions(spb.ListRecordVersionsRequest(name=name)).versions] == [1]


def test_on_site_dispatch_to_an_ended_session_is_refused_art21_records_review_stays_allowed_art22(clients, world):
    c = clients
    c.set_clock(dt.datetime(2026, 9, 8, 12, tzinfo=SHANGHAI))  # S1 (09:00–11:30) has ended, S2 (14:00–17:00) not
    plan = make_plan(c, world, D(2026, 9, 8), candidates=80)
    with pytest.raises(grpc.RpcError) as e:
        dispatch(c, plan, ["张督导", "王督导"], world)  # every session, S1 included
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    reason, texts = error_reason(e.value)
    assert reason == "ON_SITE_SESSION_ENDED"
    assert any(t.startswith("bj-2022.dispatch.on-site-not-ended|场次S1") and "第二十一条" in t for t in texts), texts
    with pytest.raises(grpc.RpcError) as e:
        dispatch(c, plan, ["张督导", "王督导"], world, sessions=["S1"])
    assert error_reason(e.value)[0] == "ON_SITE_SESSION_ENDED"
    with pytest.raises(grpc.RpcError) as e:  # a proposal for it is refused the same way
        c.sv.ProposeDispatch(spb.ProposeDispatchRequest(
            plan=plan.name, dispatching_agency="agencies/08", form=spb.SUPERVISION_FORM_ON_SITE, session_ids=["S1"],
            team_size=2, seed="ended"), metadata=h.md(h.HAIDIAN))  # fmt: skip
    assert error_reason(e.value)[0] == "ON_SITE_SESSION_ENDED"
    # The session still to come can be supervised on site.
    assert dispatch(c, plan, ["张督导", "王督导"], world, sessions=["S2"]).session_ids == ["S2"]
    # The finished session is supervised by records review (第二十二条).
    c.set_clock(dt.datetime(2026, 9, 9, 9, tzinfo=SHANGHAI))
    review = dispatch(c, plan, ["张督导", "王督导"], world, form=spb.SUPERVISION_FORM_RECORDS_REVIEW,
                      start=h.at(D(2026, 9, 9), 9), end=h.at(D(2026, 9, 9), 17), sessions=["S1"])  # fmt: skip
    assert review.form == spb.SUPERVISION_FORM_RECORDS_REVIEW and review.session_ids == ["S1"]


def test_draw_excludes_an_examiner_of_any_covered_session_not_only_the_first_art16(clients):
    c = clients
    chaoyang = ("agencies/05", "district-agency")
    inst = h.institution(c, "1100015003", "北京某某焊接技术有限公司", "05")
    pool = {n: h.supervisor(c, n, district="05")[0] for n in ("周督导", "吴督导", "郑督导")}
    c.set_clock(dt.datetime(2026, 9, 14, 9, tzinfo=SHANGHAI))
    msg = h.plan_msg(inst, D(2026, 9, 15), district="05", candidates=60)
    msg.sessions[1].examiners.append(h.person("郑督导", sup=pool["郑督导"]))  # examiner in S2 only
    plan = c.sv.CreatePlan(spb.CreatePlanRequest(plan=msg, client_request_id=h.request_id("plan")),
                           metadata=h.md(chaoyang)).plan  # fmt: skip
    for seed in [f"art16-{i}" for i in range(8)]:  # 郑督导 would be drawn 2 times in 3 if only S1 counted
        proposal = c.sv.ProposeDispatch(spb.ProposeDispatchRequest(
            plan=plan.name, dispatching_agency="agencies/05", form=spb.SUPERVISION_FORM_ON_SITE, team_size=2,
            seed=seed), metadata=h.md(chaoyang))  # fmt: skip
        assert sorted(proposal.supervisors) == sorted([pool["周督导"], pool["吴督导"]]), seed
        assert not [f for f in proposal.findings if f.severity == spb.FINDING_SEVERITY_BLOCKING], proposal.findings
    d = c.sv.CreateDispatch(spb.CreateDispatchRequest(
        dispatch=spb.Dispatch(plan=plan.name, dispatching_agency="agencies/05", form=spb.SUPERVISION_FORM_ON_SITE),
        selection=spb.TEAM_SELECTION_PROPOSED, seed=proposal.seed, team_size=2, supervisors=proposal.supervisors,
        client_request_id=h.request_id("dispatch")), metadata=h.md(chaoyang)).dispatch  # fmt: skip
    assert sorted(m.supervisor for m in d.members) == sorted([pool["周督导"], pool["吴督导"]])
    assert len(d.rule_decisions) == 2  # checked against S1 and S2


def test_art27_sanction_commits_with_its_decision_a_losing_concurrent_decision_changes_no_appointment(clients):
    """第二十七条: the suspension/revocation and the case decision are one transaction. Two officials decide the
    same case at once (批评教育 vs 暂停/取消); whichever decision is recorded, the appointment matches it."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    c = clients
    c.set_clock(dt.datetime(2026, 10, 12, 10, tzinfo=SHANGHAI))
    sanction_status = {
        spb.PENALTY_RUNG_SUPERVISOR_SUSPENSION: rpb.APPOINTMENT_STATUS_SUSPENDED,
        spb.PENALTY_RUNG_SUPERVISOR_REVOCATION: rpb.APPOINTMENT_STATUS_REVOKED,
    }
    outcomes = []
    for i in range(6):
        sanction = spb.PENALTY_RUNG_SUPERVISOR_REVOCATION if i % 2 else spb.PENALTY_RUNG_SUPERVISOR_SUSPENSION
        sup = h.supervisor(c, f"冯督导{i}")[0]
        case = c.sv.OpenCase(spb.OpenCaseRequest(penalty_case=spb.PenaltyCase(
            subject_kind=spb.CASE_SUBJECT_KIND_SUPERVISOR, subject=sup, description="未按要求填写督导记录表",
            triggers=[spb.CASE_TRIGGER_SUPERVISOR_DUTY_FAILURE]), client_request_id=f"case-race-{i}"),
            metadata=h.md(h.HAIDIAN)).penalty_case  # fmt: skip
        barrier = Barrier(2)

        def decide(rung: int, case_name: str = case.name, barrier: Barrier = barrier):
            req = spb.RecordCaseDecisionRequest(
                name=case_name, decision=spb.CaseDecision(rung=rung, official="海淀区鉴定所 周所长")
            )
            barrier.wait()
            try:
                return c.sv.RecordCaseDecision(req, metadata=h.md(h.HAIDIAN)).penalty_case
            except grpc.RpcError as e:
                return e.code()

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(decide, [spb.PENALTY_RUNG_SUPERVISOR_CRITICISM, sanction]))
        assert sum(isinstance(r, spb.PenaltyCase) for r in results) == 1, results
        assert set(r for r in results if not isinstance(r, spb.PenaltyCase)) == {grpc.StatusCode.FAILED_PRECONDITION}
        (decided,) = c.sv.GetCase(spb.GetCaseRequest(name=case.name)).penalty_case.decisions
        status = c.registry.GetSupervisor(rpb.GetSupervisorRequest(name=sup)).supervisor.status
        outcomes.append((decided.rung, status))
        assert status == sanction_status.get(decided.rung, rpb.APPOINTMENT_STATUS_ACTIVE), (i, decided.rung, status)
    assert outcomes  # which decision wins each race is up to the scheduler; consistency is not


def test_member_replaced_after_the_first_of_two_on_site_sessions_ended_art14_art21(clients, world):
    c, s = clients, world["sups"]
    c.set_clock(dt.datetime(2026, 9, 21, 9, tzinfo=SHANGHAI))
    plan = make_plan(c, world, D(2026, 9, 22), candidates=90)
    d = dispatch(c, plan, ["张督导", "王督导"], world)  # S1 and S2, both still to come
    c.set_clock(dt.datetime(2026, 9, 22, 12, tzinfo=SHANGHAI))  # S1 over; 王督导 falls ill before S2
    replaced = c.sv.ReplaceDispatchMember(spb.ReplaceDispatchMemberRequest(
        name=d.name, supervisor=s["王督导"][0], replacement=s["赵督导"][0], reason="王督导突发疾病"),
        metadata=h.md(h.HAIDIAN)).dispatch  # fmt: skip
    active = sorted(m.supervisor for m in replaced.members if m.state == spb.MEMBER_STATE_ACTIVE)
    assert active == sorted([s["张督导"][0], s["赵督导"][0]])
