"""The supervision workflow end to end through the public gRPC APIs only, on the embedded stack with a real
nats-server (issue #7; 第十四条, 第十六条, 第十九条–第二十七条, D5, D7, D10–D14):

seed → supervisors registered and appointed → plan with 250 candidates → ProposeTeam → dispatch (advice to add
a third supervisor recorded) → a supervisor who examines in the same session is refused (第十六条) → Annex 3
records-review record with item 12 = 否 → finding → penalty case → recommendation 通报批评并责令改正
(第二十六条) → official decision → the correction deadline passes → escalation → Annex 4 feedback with the
badge not worn → supervisor review case (第二十七条) → period close → report PDF rendered and the
notification delivered. Then every event is replayed into a fresh documents + notify pair.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import nats
import pdfplumber
import pytest
import wf_helpers as h

from bjsv.documents.v1 import documents_pb2 as dpb
from bjsv.documents.v1 import documents_pb2_grpc
from bjsv.events.v1 import envelope_pb2
from bjsv.notify.v1 import notify_pb2 as npb
from bjsv.notify.v1 import notify_pb2_grpc
from bjsv.registry.v1 import supervision_events_pb2 as ev
from bjsv.registry.v1 import supervision_pb2 as spb
from common import pki
from common.clock import SHANGHAI
from supervisionctl.natsd import NatsServer, free_port
from supervisionctl.stack import Stack, StackConfig
from tests import auth_support

D = dt.date
T = TypeVar("T")
WORKFLOW_TYPES = {
    "plan.created", "plan.updated", "dispatch.created", "dispatch.cancelled", "dispatch.member_replaced",
    "record.submitted", "record.corrected", "feedback.submitted", "case.opened", "case.decided", "case.escalated",
    "case.corrected", "immediate_report.raised", "period.closed",
}  # fmt: skip
PAYLOAD = {
    "plan.created": ev.PlanCreated, "dispatch.created": ev.DispatchCreated, "record.submitted": ev.RecordSubmitted,
    "feedback.submitted": ev.FeedbackSubmitted, "case.opened": ev.CaseOpened, "case.decided": ev.CaseDecided,
    "case.escalated": ev.CaseEscalated, "period.closed": ev.PeriodClosed, "immediate_report.raised":
    ev.ImmediateReportRaised,
}  # fmt: skip
WORKFLOW_KINDS = {dpb.DOCUMENT_KIND_ON_SITE_RECORD, dpb.DOCUMENT_KIND_RECORDS_REVIEW_RECORD, dpb.DOCUMENT_KIND_FEEDBACK,
                  dpb.DOCUMENT_KIND_DISTRICT_REPORT}  # fmt: skip
INSTITUTION_NAME = "北京某某电力技术有限公司"
CITY_CENTRE_EMAIL = "zhongxin@example.bj.cn"
PLAN_TITLE = "2026年第四期电工（四级）职业技能等级认定"
ITEM_12 = "被督导单位配合外督员人员工作"
REMARK_12 = "被督导单位拒绝提供考场录像和评分记录表"


def eventually(fn: Callable[[], T | None], *, timeout: float = 30.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def pdf_text(data: bytes) -> str:
    """Text read back from the PDF's characters: drawing order (a wrapped table cell stays contiguous) plus
    rebuilt lines (text laid out across cells), so an assertion finds text either way."""
    stream, lines = [], []
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            stream.append("".join(c["text"] for c in page.chars))
            rows: dict[float, list] = {}
            for ch in page.chars:
                rows.setdefault(round(ch["matrix"][5], 1), []).append(ch)
            lines += ["".join(c["text"] for c in sorted(chs, key=lambda c: c["x0"])) for _, chs in
                      sorted(rows.items(), reverse=True)]  # fmt: skip
    return "".join(stream) + "\n" + "\n".join(lines)


class Docs:
    def __init__(self, target: str) -> None:
        self.channel = auth_support.channel(target)
        self.stub = documents_pb2_grpc.DocumentsServiceStub(self.channel)

    def find(self, subject: str, kind: int) -> dpb.Document | None:
        docs = self.stub.ListDocuments(dpb.ListDocumentsRequest(subject=subject, kind=kind, page_size=50)).documents
        return docs[0] if docs else None

    def content(self, name: str) -> bytes:
        return b"".join(m.chunk for m in self.stub.GetDocument(dpb.GetDocumentRequest(name=name)) if
                        m.WhichOneof("item") == "chunk")  # fmt: skip

    def all(self) -> list[tuple[str, int, str]]:
        """The workflow's documents (Annex 3/4, district reports). Badge PDFs carry a QR signed with the
        documents instance's own issuer key, so a fresh instance renders them with other bytes by design."""
        out, token = [], ""
        while True:
            resp = self.stub.ListDocuments(dpb.ListDocumentsRequest(page_size=500, page_token=token))
            out += [(d.subject, d.kind, d.sha256) for d in resp.documents if d.kind in WORKFLOW_KINDS]
            token = resp.next_page_token
            if not token:
                return sorted(out)


class Notify:
    def __init__(self, target: str) -> None:
        self.channel = auth_support.channel(target)
        self.stub = notify_pb2_grpc.NotifyServiceStub(self.channel)

    def inbox(self, recipient: str, subject: str = "") -> list[npb.Notification]:
        return list(self.stub.ListNotifications(npb.ListNotificationsRequest(recipient=recipient, subject=subject,
                                                                             page_size=500)).notifications)  # fmt: skip


async def _stream(url: str, stream: str) -> list[tuple[str, bytes, dict[str, str]]]:
    nc = await nats.connect(url, tls=pki.ssl_context())
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            m = await js.get_msg(stream, seq)
            out.append((m.subject, m.data, dict(m.headers or {})))
        return out
    finally:
        await nc.close()


async def _consumers_drained(url: str, stream: str) -> bool:
    """Every durable consumer of the stream has delivered and got acks for everything."""
    nc = await nats.connect(url, tls=pki.ssl_context())
    try:
        js = nc.jetstream()
        consumers = await js.consumers_info(stream)
        return bool(consumers) and all(ci.num_pending == 0 and ci.num_ack_pending == 0 for ci in consumers)
    finally:
        await nc.close()


def drained(url: str, stream: str = "BJSV_REGISTRY") -> bool:
    return asyncio.run(_consumers_drained(url, stream))


def registry_events(url: str) -> list[envelope_pb2.EventEnvelope]:
    envs = []
    for _, data, _ in asyncio.run(_stream(url, "BJSV_REGISTRY")):
        env = envelope_pb2.EventEnvelope()
        env.ParseFromString(data)
        envs.append(env)
    return envs


def payload(env: envelope_pb2.EventEnvelope) -> Any:
    msg = PAYLOAD[env.type]()
    assert env.payload.Unpack(msg)
    return msg


@pytest.fixture(scope="module")
def flow(e2e_stack: Stack) -> dict[str, Any]:
    """Runs the whole flow once; the tests below assert on what it produced."""
    cfg = e2e_stack.config
    c = h.Clients(cfg.target("registry"))
    out: dict[str, Any] = {"clients": c}
    Notify(cfg.target("notify")).stub.SetContact(npb.SetContactRequest(contact=npb.Contact(
        recipient="agencies/A", email=CITY_CENTRE_EMAIL, display_name="北京市职业技能鉴定管理中心")))  # fmt: skip
    inst = h.institution(c, "1100012001", INSTITUTION_NAME, "08")
    sups = {n: h.supervisor(c, n) for n in ("张督导", "王督导", "赵督导", "钱督导")}
    qian = sups["钱督导"][0]
    out["sups"] = sups

    c.set_clock(dt.datetime(2026, 11, 30, 9, tzinfo=SHANGHAI))
    plan = c.sv.CreatePlan(spb.CreatePlanRequest(
        plan=h.plan_msg(inst, D(2026, 12, 1), title=PLAN_TITLE, candidates=250,
                        examiners=[h.person("钱督导", sup=qian)]),
        client_request_id="e2e-plan-1"), metadata=h.md(h.HAIDIAN)).plan  # fmt: skip
    out["plan"] = plan

    review_start, review_end = h.at(D(2026, 12, 2), 9), h.at(D(2026, 12, 2), 17)
    proposal = c.sv.ProposeDispatch(spb.ProposeDispatchRequest(
        plan=plan.name, dispatching_agency="agencies/08", form=spb.SUPERVISION_FORM_RECORDS_REVIEW, team_size=2,
        seed="e2e-2026-12", supervision_start_time=review_start, supervision_end_time=review_end),
        metadata=h.md(h.HAIDIAN))  # fmt: skip
    out["proposal"] = proposal
    d_msg = spb.Dispatch(
        plan=plan.name,
        dispatching_agency="agencies/08",
        form=spb.SUPERVISION_FORM_RECORDS_REVIEW,
        supervision_start_time=review_start,
        supervision_end_time=review_end,
    )
    create = spb.CreateDispatchRequest(
        dispatch=d_msg,
        selection=spb.TEAM_SELECTION_PROPOSED,
        seed=proposal.seed,
        team_size=2,
        supervisors=proposal.supervisors,
        client_request_id="e2e-dispatch-1",
    )
    dispatch = c.sv.CreateDispatch(create, metadata=h.md(h.HAIDIAN)).dispatch
    out["dispatch"] = dispatch
    h.declare(c, dispatch.name, *proposal.supervisors)  # 第十六条: each member declares before acting

    with pytest.raises(grpc.RpcError) as refused:
        c.sv.CreateDispatch(spb.CreateDispatchRequest(
            dispatch=spb.Dispatch(plan=plan.name, dispatching_agency="agencies/08", form=spb.SUPERVISION_FORM_ON_SITE,
                                  session_ids=["S1"]),
            selection=spb.TEAM_SELECTION_MANUAL, supervisors=[sups["赵督导"][0], qian],
            client_request_id="e2e-dispatch-2"), metadata=h.md(h.HAIDIAN))  # fmt: skip
    out["refused"] = refused.value

    c.set_clock(dt.datetime(2026, 12, 3, 10, tzinfo=SHANGHAI))
    first, second = (m.supervisor for m in dispatch.members)
    names = {m.supervisor: m.display_name for m in dispatch.members}
    record_req = spb.SubmitRecordRequest(record=spb.SupervisionRecord(
        dispatch=dispatch.name, submitted_by=first, answers=h.answers(16, {12: REMARK_12}),
        problems="被督导单位未配合调阅资料，已当场提出督导意见。", supervisor_signatures=[names[first], names[second]],
        institution_head_signature="李主任", sign_date="2026-12-03"), client_request_id="e2e-record-1")  # fmt: skip
    out["record"] = c.sv.SubmitRecord(record_req, metadata=h.md(h.HAIDIAN)).record
    out["record_again"] = c.sv.SubmitRecord(record_req, metadata=h.md(h.HAIDIAN)).record
    case_name = out["record"].findings[0].opened_case
    out["case_opened"] = c.sv.GetCase(spb.GetCaseRequest(name=case_name)).penalty_case
    decision = spb.CaseDecision(
        rung=spb.PENALTY_RUNG_CRITICISM_AND_CORRECTION,
        official="市鉴定管理中心 刘主任",
        note="限期整改，补交录像资料",
        correction_deadline="2026-12-10",
    )
    out["case_decided"] = c.sv.RecordCaseDecision(
        spb.RecordCaseDecisionRequest(name=case_name, decision=decision), metadata=h.md(h.CITY)
    ).penalty_case

    def feedback(sup: str, badge: int, crid: str, comments: str) -> spb.SupervisorFeedback:
        return c.sv.SubmitFeedback(spb.SubmitFeedbackRequest(feedback=spb.SupervisorFeedback(
            dispatch=dispatch.name, supervisor=sup, entry_time=h.at(D(2026, 12, 2), 8, 50),
            exit_time=h.at(D(2026, 12, 2), 17, 10), badge_worn=badge, duties_performed=spb.ANSWER_VALUE_YES,
            integrity_kept=spb.ANSWER_VALUE_YES, comments=comments, signed_by="李主任"), client_request_id=crid),
            metadata=h.md(("institutions/1100012001", "institution"))).feedback  # fmt: skip

    out["feedback_no_badge"] = feedback(first, spb.ANSWER_VALUE_NO, "e2e-fb-1", "进场时未佩戴质量督导员证卡")
    out["feedback_ok"] = feedback(second, spb.ANSWER_VALUE_YES, "e2e-fb-2", "认真履职")
    out["review_case"] = c.sv.GetCase(spb.GetCaseRequest(name=out["feedback_no_badge"].review_case)).penalty_case

    c.set_clock(dt.datetime(2026, 12, 11, 9, tzinfo=SHANGHAI))  # the correction deadline 2026-12-10 has passed
    out["sweep"] = c.sv.RunSweep(spb.RunSweepRequest(), metadata=h.md(h.OPERATOR))
    out["case_escalated"] = c.sv.GetCase(spb.GetCaseRequest(name=case_name)).penalty_case

    c.set_clock(dt.datetime(2026, 12, 16, 9, tzinfo=SHANGHAI))
    out["closed"] = c.sv.ClosePeriod(spb.ClosePeriodRequest(date="2026-12-02"), metadata=h.md(h.HAIDIAN))
    out["closed_again"] = c.sv.ClosePeriod(spb.ClosePeriodRequest(date="2026-12-02"), metadata=h.md(h.HAIDIAN))
    out["status"] = c.sv.GetPlanStatus(spb.GetPlanStatusRequest(plan=plan.name))
    return out


def test_propose_and_dispatch_record_the_seed_and_the_advice_for_a_third_supervisor_art20_d7(flow):
    proposal, d = flow["proposal"], flow["dispatch"]
    qian = flow["sups"]["钱督导"][0]
    assert len(proposal.supervisors) == 2 and qian not in proposal.supervisors  # examiner of S1 not drawable
    assert proposal.recommended_team_size == 3
    assert d.selection == spb.TEAM_SELECTION_PROPOSED and d.seed == proposal.seed == "e2e-2026-12"
    assert [m.supervisor for m in d.members] == list(proposal.supervisors)
    assert all(m.badge_code.startswith("R112") and m.badge_code[5:7] == "08" for m in d.members)
    advice = [f for f in d.advisory_findings if "第二十条" in f.article]
    assert advice and advice[0].severity == spb.FINDING_SEVERITY_ADVISORY
    assert d.form == spb.SUPERVISION_FORM_RECORDS_REVIEW and d.record_due_date == d.feedback_due_date == "2026-12-09"
    assert (d.plan_title, d.institution_name, d.district) == (PLAN_TITLE, INSTITUTION_NAME, "08")
    # D15: the rules decisions behind the team check are kept (one per supervised session: S1, S2)
    assert len(d.rule_decisions) == 2 and all(x.startswith("decisions/") for x in d.rule_decisions)


def test_supervisor_who_examines_in_the_same_session_is_refused_art16(flow):
    e = flow["refused"]
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "第十六条" in e.details() or "同场次" in e.details(), e.details()


def test_records_review_item_12_no_is_a_finding_and_an_art26_case_d11_d14(flow):
    rec, again, case = flow["record"], flow["record_again"], flow["case_opened"]
    assert (again.name, again.version, again.submit_time) == (rec.name, 1, rec.submit_time)  # idempotent
    assert rec.form == spb.SUPERVISION_FORM_RECORDS_REVIEW and len(rec.answers) == 16
    assert (rec.institution_name, rec.plan_title, rec.certification_mode_text) == (
        INSTITUTION_NAME,
        PLAN_TITLE,
        "理论知识考试、技能操作考核",
    )
    assert not rec.late and rec.due_date == "2026-12-09"
    (finding,) = rec.findings
    assert (finding.item_number, finding.item_text, finding.remark) == (12, ITEM_12, REMARK_12)
    assert case.name == finding.opened_case and case.subject == "institutions/1100012001"
    assert list(case.triggers) == [spb.CASE_TRIGGER_REFUSED_INFORMATION, spb.CASE_TRIGGER_OBSTRUCTED_REPORTING]
    assert case.origin == spb.CASE_ORIGIN_RECORD_FINDING and list(case.item_numbers) == [12]
    r = case.recommendation
    assert (r.rung, r.sanction_text, r.article) == (spb.PENALTY_RUNG_CRITICISM_AND_CORRECTION, "通报批评并责令改正",
                                                    "第二十六条")  # fmt: skip
    assert r.rule_set_version and r.rule_decisions and r.rule_decisions[0].startswith("decisions/")


def test_official_decision_then_missed_deadline_escalates_one_rung_art26_d13(flow):
    decided, escalated, sweep = flow["case_decided"], flow["case_escalated"], flow["sweep"]
    assert decided.state == spb.CASE_STATE_AWAITING_CORRECTION and decided.correction_deadline == "2026-12-10"
    assert decided.decisions[0].official == "市鉴定管理中心 刘主任"
    assert decided.decisions[0].sanction_text == "通报批评并责令改正"
    assert list(sweep.escalated_cases) == [decided.name]
    assert escalated.state == spb.CASE_STATE_ESCALATED and escalated.escalation_count == 1
    assert escalated.recommendation.rung == spb.PENALTY_RUNG_DISCIPLINARY_RECOMMENDATION
    assert escalated.recommendation.sanction_text == "向其主管部门提出给予处分的建议"


def test_badge_not_worn_opens_a_supervisor_review_art27_d12(flow):
    fb, ok, review = flow["feedback_no_badge"], flow["feedback_ok"], flow["review_case"]
    assert fb.badge_worn == spb.ANSWER_VALUE_NO and fb.review_case == review.name and not fb.late
    assert ok.review_case == ""
    assert review.subject_kind == spb.CASE_SUBJECT_KIND_SUPERVISOR and review.subject == fb.supervisor
    assert list(review.triggers) == [spb.CASE_TRIGGER_SUPERVISOR_DUTY_FAILURE]
    assert review.origin == spb.CASE_ORIGIN_FEEDBACK and "未佩戴质量督导员证卡" in review.description
    assert review.recommendation.article == "第二十七条"
    assert review.recommendation.rung == spb.PENALTY_RUNG_SUPERVISOR_CRITICISM


def test_half_month_district_report_figures_art24_d10(flow):
    closed, again = flow["closed"], flow["closed_again"]
    assert closed.newly_closed and not again.newly_closed
    (rpt,) = closed.reports
    assert list(again.reports) == list(closed.reports)
    assert (rpt.name, rpt.district_name, rpt.period_start, rpt.period_end) == (
        "reports/08/2026-12-1",
        "海淀区",
        "2026-12-01",
        "2026-12-15",
    )
    by_form = {f.form: f.count for f in rpt.supervisions_by_form}
    assert by_form == {spb.SUPERVISION_FORM_ON_SITE: 0, spb.SUPERVISION_FORM_RECORDS_REVIEW: 1}
    assert [(n.form, n.item_number, n.item_text, n.count) for n in rpt.no_counts] == [
        (spb.SUPERVISION_FORM_RECORDS_REVIEW, 12, ITEM_12, 1)
    ]
    assert (rpt.late_records, rpt.late_feedback, rpt.feedback_count) == (0, 0, 2)
    assert (rpt.cases_opened, rpt.cases_decided) == (2, 1)
    assert list(rpt.records) == [flow["record"].name] and rpt.recipient == "agencies/A"
    # the sweep on 12-11 closed the previous period (2026-11-16..30) with the dispatch created on 11-30
    assert list(flow["sweep"].closed_reports) == ["reports/08/2026-11-2"]


def test_notify_follows_the_workflow_test_clock_one_clock_for_deadline_tests(flow, e2e_stack):
    c, notify = flow["clients"], Notify(e2e_stack.config.target("notify"))
    workflow_now = c.sv.GetSupervisionClock(spb.GetSupervisionClockRequest()).now
    assert workflow_now.ToDatetime(tzinfo=SHANGHAI) == dt.datetime(2026, 12, 16, 9, tzinfo=SHANGHAI)

    def notify_clock():
        got = notify.stub.GetClock(npb.GetClockRequest())
        return got if (got.mode, got.now) == ("fixed", workflow_now) else None

    eventually(notify_clock, what="notify's clock at the workflow's fixed instant")
    c.set_clock(dt.datetime(2026, 12, 17, 9, tzinfo=SHANGHAI))
    workflow_now = c.sv.GetSupervisionClock(spb.GetSupervisionClockRequest()).now
    eventually(notify_clock, what="notify's clock moved with the workflow's")


def test_every_workflow_event_is_published_once_with_self_sufficient_payloads(flow, e2e_stack):
    envs = eventually(lambda: [e for e in registry_events(e2e_stack.config.nats_url) if e.type in WORKFLOW_TYPES]
                      if sum(e.type == "period.closed" for e in registry_events(e2e_stack.config.nats_url)) >= 2
                      else None, what="workflow events on BJSV_REGISTRY")  # fmt: skip
    counts = Counter(e.type for e in envs)
    immediate = flow["case_escalated"].immediate_report_raised
    assert counts == Counter({"plan.created": 1, "dispatch.created": 1, "record.submitted": 1, "case.opened": 2,
                              "case.decided": 1, "feedback.submitted": 2, "case.escalated": 1, "period.closed": 2,
                              **({"immediate_report.raised": 1} if immediate else {})})  # fmt: skip
    assert len({e.event_id for e in envs}) == len(envs)
    assert all(e.source == "registry" and e.trace_id for e in envs)
    by_type = {t: [payload(e) for e in envs if e.type == t] for t in counts}
    (dc,) = by_type["dispatch.created"]
    assert (dc.record_due_date, dc.feedback_due_date) == ("2026-12-09", "2026-12-09")
    assert {(r.party, r.role) for r in dc.recipients} == {
        *((m.supervisor, "supervisor") for m in flow["dispatch"].members),
        ("institutions/1100012001", "institution"),
        ("agencies/08", "dispatching_agency"),
    }
    assert dc.plan.candidate_count == 250 and dc.plan.institution_name == INSTITUTION_NAME
    (rs,) = by_type["record.submitted"]
    assert rs.record == flow["record"] and rs.dispatch.name == flow["dispatch"].name
    assert [(a.item_number, a.answer, a.remark) for a in rs.record.answers if a.answer == spb.ANSWER_VALUE_NO] == [
        (12, spb.ANSWER_VALUE_NO, REMARK_12)
    ]
    assert all(a.item_text for a in rs.record.answers)
    assert [r.party for r in rs.recipients] == ["agencies/08"]
    fbs = {p.feedback.name: p for p in by_type["feedback.submitted"]}
    assert fbs[flow["feedback_no_badge"].name].feedback.badge_worn == spb.ANSWER_VALUE_NO
    opened = {p.penalty_case.name: p for p in by_type["case.opened"]}
    assert set(opened) == {flow["case_opened"].name, flow["review_case"].name}
    assert {r.party for r in opened[flow["case_opened"].name].recipients} == {"agencies/A", "agencies/08"}
    (cd,) = by_type["case.decided"]
    assert cd.decision.correction_deadline == "2026-12-10" and cd.penalty_case.name == flow["case_opened"].name
    (ce,) = by_type["case.escalated"]
    assert (ce.missed_deadline, ce.previous_rung) == ("2026-12-10", spb.PENALTY_RUNG_CRITICISM_AND_CORRECTION)
    assert ce.penalty_case.recommendation.rung == spb.PENALTY_RUNG_DISCIPLINARY_RECOMMENDATION
    reports = {p.report.name: p for p in by_type["period.closed"]}
    assert reports["reports/08/2026-12-1"].report == flow["closed"].reports[0]
    assert {(r.party, r.role) for r in reports["reports/08/2026-12-1"].recipients} == {
        ("agencies/A", "city_centre"),
        ("agencies/08", "district_agency"),
    }


def test_documents_render_annex3_annex4_and_the_district_report(flow, e2e_stack, smtp):
    docs = Docs(e2e_stack.config.target("documents"))
    rec = flow["record"]
    d3 = eventually(lambda: docs.find(rec.name, dpb.DOCUMENT_KIND_RECORDS_REVIEW_RECORD), what="Annex 3 PDF")
    text3 = pdf_text(docs.content(d3.name))
    for expected in (
        "北京市职业技能等级认定督导记录表",
        INSTITUTION_NAME,
        PLAN_TITLE,
        "理论知识考试、技能操作考核",
        ITEM_12,
        REMARK_12,
        "李主任",
    ):
        assert expected in text3.replace("\n", ""), expected
    fb = flow["feedback_no_badge"]
    d4 = eventually(lambda: docs.find(fb.name, dpb.DOCUMENT_KIND_FEEDBACK), what="Annex 4 PDF")
    text4 = pdf_text(docs.content(d4.name)).replace("\n", "")
    for expected in ("北京市技能人才评价外督员情况反馈表", fb.supervisor_name, "进场时未佩戴质量督导员证卡"):
        assert expected in text4, expected

    notify = Notify(e2e_stack.config.target("notify"))
    report = "reports/08/2026-12-1"

    def delivered() -> npb.Notification | None:
        for n in notify.inbox("agencies/A", subject=report):
            if any(x.channel == npb.CHANNEL_NATS and x.state == npb.DELIVERY_STATE_DELIVERED for x in n.deliveries):
                return n
        return None

    note = eventually(delivered, timeout=90, what="period report notification delivered to the city centre")
    assert note.kind == npb.NOTIFICATION_KIND_PERIOD_REPORT and "第二十四条" in list(note.articles)
    assert note.title == "半月督导结果报送：海淀区 2026年12月1日—2026年12月15日"
    assert "督导1次，逾期记录表0份、逾期反馈表0份，立案2件、决定1件" in note.body
    pdf = eventually(lambda: docs.find(report, dpb.DOCUMENT_KIND_DISTRICT_REPORT), what="district report PDF")
    doc_name = pdf.name
    text = pdf_text(docs.content(doc_name)).replace("\n", "")
    for expected in (
        "海淀区职业技能等级认定质量督导情况半月报",
        "2026年12月1日",
        "2026年12月15日",
        f"12{ITEM_12}1",
        "本期立案2",
        "本期作出处理决定1",
    ):
        assert expected in text, expected

    # The city centre's e-mail carries the rendered report PDF (第二十四条 报送).
    def mailed() -> list:
        return [m for m in smtp.to(CITY_CENTRE_EMAIL) if "2026年12月1日" in str(m["Subject"])]

    (mail,) = eventually(mailed, timeout=90, what="period report e-mail to the city centre")
    assert "半月督导结果报送" in str(mail["Subject"])
    (pdf_part,) = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    attached = pdf_text(pdf_part.get_content()).replace("\n", "")
    assert "海淀区职业技能等级认定质量督导情况半月报" in attached and f"12{ITEM_12}1" in attached


async def _copy_stream(src: str, dst: str, stream: str, subjects: list[str], msg_id_suffix: str = "") -> int:
    msgs = await _stream(src, stream)
    nc = await nats.connect(dst, tls=pki.ssl_context())
    try:
        js = nc.jetstream()
        if not msg_id_suffix:
            await js.add_stream(name=stream, subjects=subjects)
        for subject, data, headers in msgs:
            # Nats-Batch-* headers record how the relay sent the event (an atomic batch), not the event itself
            headers = {k: v for k, v in headers.items() if not k.startswith("Nats-Batch-")}
            headers["Nats-Msg-Id"] = headers.get("Nats-Msg-Id", "") + msg_id_suffix
            await js.publish(subject, data, headers=headers)
        return len(msgs)
    finally:
        await nc.close()


def test_replaying_every_event_into_fresh_documents_and_notify_gives_the_same_documents_no_duplicates(
        flow, e2e_stack, tmp_path: Path):  # fmt: skip
    cfg = e2e_stack.config
    docs, notify = Docs(cfg.target("documents")), Notify(cfg.target("notify"))
    eventually(lambda: docs.find("reports/08/2026-12-1", dpb.DOCUMENT_KIND_DISTRICT_REPORT) or
               notify.inbox("agencies/A", subject="reports/08/2026-12-1"),
               timeout=90, what="original processing")  # fmt: skip
    eventually(lambda: drained(cfg.nats_url), timeout=90, what="original consumers to finish")
    original_docs = docs.all()
    assert {k for _, k, _ in original_docs} == WORKFLOW_KINDS - {dpb.DOCUMENT_KIND_ON_SITE_RECORD}
    recipients = [
        "agencies/A",
        "agencies/08",
        "institutions/1100012001",
        *(m.supervisor for m in flow["dispatch"].members),
    ]
    original_notes = {r: sorted(n.idempotency_key for n in notify.inbox(r)) for r in recipients}

    fresh_nats = NatsServer(store_dir=tmp_path / "nats", port=free_port(), name="bjsv-replay")
    fresh_nats.start()
    fresh = Stack(StackConfig(
        data_dir=tmp_path / "fresh", nats_port=0, external_nats_url=fresh_nats.url,
        ports={**{n: free_port() for n in ("documents", "notify")}, "registry": cfg.ports["registry"],
               "rules": cfg.ports["rules"]},
        extra_env=h.workflow_env()), services=("documents", "notify"))  # fmt: skip
    try:
        copied = asyncio.run(_copy_stream(cfg.nats_url, fresh_nats.url, "BJSV_REGISTRY", ["bjsv.registry.>"]))
        assert copied > 10
        fresh.start(timeout=90)
        fdocs, fnotify = Docs(fresh.config.target("documents")), Notify(fresh.config.target("notify"))

        def same_docs() -> bool:
            return fdocs.all() == original_docs

        try:
            eventually(same_docs, timeout=90, what="fresh documents instance to render the same documents")
        except AssertionError:
            got = fdocs.all()
            raise AssertionError(
                f"only original: {sorted(set(original_docs) - set(got))}; "
                f"only fresh: {sorted(set(got) - set(original_docs))}"
            ) from None
        for r in recipients:
            eventually(lambda r=r: sorted(n.idempotency_key for n in fnotify.inbox(r)) == original_notes[r],
                       timeout=90, what=f"fresh notify inbox of {r}")  # fmt: skip
        # Replaying every event a second time (new Nats-Msg-Id, same event ids) changes nothing: the
        # handlers are idempotent on the event id (processed_event).
        again = asyncio.run(
            _copy_stream(cfg.nats_url, fresh_nats.url, "BJSV_REGISTRY", ["bjsv.registry.>"], msg_id_suffix="#replay")
        )
        assert again == copied
        # drained() sees the replayed messages as pending until the consumers have acknowledged them all.
        eventually(lambda: drained(fresh_nats.url), timeout=90, what="fresh consumers to process the replay")
        for r in recipients:
            keys = [n.idempotency_key for n in fnotify.inbox(r)]
            assert len(keys) == len(set(keys)) and sorted(keys) == original_notes[r]
        assert fdocs.all() == original_docs
    finally:
        fresh.stop()
        fresh_nats.stop()
