"""One home for every interpretation (issue #14 item 8): the workflow keeps no copy of D10–D14. A deployment's
override in BJSV_RULES_POLICY_FILE changes the workflow's behaviour through the public API, one test per
parameter; and a 第二十七条 case against an internal supervisor is refused with the article (第二十七条 applies to
外督员 only; 内督员 are their institution's, 第八条)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import grpc
import pytest
import wf_helpers as h
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bjsv.registry.v1 import supervision_pb2 as spb
from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from common.clock import SHANGHAI
from supervisionctl.natsd import free_port
from supervisionctl.stack import Stack, StackConfig
from tests import auth_support

D = dt.date
#: The overrides (bj-2022 says 15; true; records-review item 12 → 第二十六条（一）（二）; 7 未认真履行职责; the law's
#: wording). Triggers are bjsv.rules.v1.PenaltyTrigger numbers: 3 = 第二十六条（三）, 8 = 利用职务谋取私利.
POLICY = """\
rulesets:
  bj-2022:
    period.first_half_last_day: 10
    record.no_answer_requires_remark: false
    record.case_opening_items:
      - {form: 1, item: 12, triggers: [3]}
    feedback.review_trigger: 8
    penalty.ladder.art26:
      - 通报批评并责令改正（覆盖）
      - 向其主管部门提出给予处分的建议（覆盖）
      - 取消其职业技能等级认定工作资格（覆盖）
    penalty.ladder.art27: [批评教育（覆盖）, 暂停督导工作（覆盖）, 取消其外督员资格（覆盖）]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("overrides")
    (tmp / "policy.yaml").write_text(POLICY, encoding="utf-8")
    cfg = StackConfig(
        data_dir=tmp,
        nats_port=free_port(),
        ports={name: free_port() for name in ("registry", "rules", "documents", "notify")},
        extra_env=h.workflow_env(BJSV_RULES_POLICY_FILE=str(tmp / "policy.yaml")),
    )
    stack = Stack(cfg, services=("rules", "registry"))
    stack.start(timeout=90)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def c(stack: Stack) -> Iterator[h.Clients]:
    clients = h.Clients(stack.config.target("registry"))
    yield clients
    clients.close()


@pytest.fixture(scope="module")
def world(c: h.Clients) -> dict:
    return {
        "inst": h.institution(c, "1100015001", "北京某某烹饪技术学校", "08"),
        "sups": [h.supervisor(c, n)[0] for n in ("甲督导", "乙督导")],
    }


def on_site_dispatch(c: h.Clients, world: dict, day: D) -> spb.Dispatch:
    """An on-site dispatch of session S1 (09:00–11:30) on `day`, created the day before."""
    c.set_clock(dt.datetime.combine(day - dt.timedelta(days=1), dt.time(9), SHANGHAI))
    plan = c.sv.CreatePlan(
        spb.CreatePlanRequest(plan=h.plan_msg(world["inst"], day), client_request_id=h.request_id("plan")),
        metadata=h.md(h.HAIDIAN),
    ).plan
    d = spb.Dispatch(
        plan=plan.name, dispatching_agency="agencies/08", form=spb.SUPERVISION_FORM_ON_SITE, session_ids=["S1"]
    )
    req = spb.CreateDispatchRequest(
        dispatch=d,
        selection=spb.TEAM_SELECTION_MANUAL,
        supervisors=world["sups"],
        client_request_id=h.request_id("dispatch"),
    )
    dispatched = c.sv.CreateDispatch(req, metadata=h.md(h.HAIDIAN)).dispatch
    h.declare(c, dispatched.name, *world["sups"])  # 第十六条: before acting
    c.set_clock(dt.datetime.combine(day, dt.time(15), SHANGHAI))  # after the session
    return dispatched


def submit_record(c: h.Clients, d: spb.Dispatch, sup: str, day: D, no: dict[int, str]) -> spb.SupervisionRecord:
    rec = spb.SupervisionRecord(
        dispatch=d.name,
        submitted_by=sup,
        answers=h.answers(17, no),
        problems="见备注",
        supervisor_signatures=["甲督导", "乙督导"],
        institution_head_signature="王校长",
        sign_date=day.isoformat(),
    )
    req = spb.SubmitRecordRequest(record=rec, client_request_id=h.request_id("record"))
    return c.sv.SubmitRecord(req, metadata=h.md(h.HAIDIAN)).record


def test_an_overridden_first_half_last_day_moves_the_reporting_periods_art24_d10(c, world):
    c.set_clock(dt.datetime(2026, 4, 12, 9, tzinfo=SHANGHAI))
    closed = c.sv.ClosePeriod(spb.ClosePeriodRequest(date="2026-04-05", include_empty_districts=True))
    assert closed.reports and {(r.period_start, r.period_end) for r in closed.reports} == {("2026-04-01", "2026-04-10")}
    with pytest.raises(grpc.RpcError) as e:  # the second half now starts on the 11th and has not ended
        c.sv.ClosePeriod(spb.ClosePeriodRequest(date="2026-04-11"))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "2026-04-11至2026-04-30" in e.value.details()


def test_a_no_without_remark_is_accepted_when_the_rule_set_does_not_require_one_annex3_d11(c, world):
    day = D(2026, 5, 12)
    d = on_site_dispatch(c, world, day)
    rec = submit_record(c, d, world["sups"][0], day, {3: ""})
    assert [(f.item_number, f.remark) for f in rec.findings] == [(3, "")]


def test_an_overridden_case_opening_item_opens_a_case_from_the_on_site_form_art26_d14(c, world):
    day = D(2026, 5, 19)
    d = on_site_dispatch(c, world, day)
    rec = submit_record(c, d, world["sups"][0], day, {12: "拒不按督导意见调整考场"})
    (finding,) = rec.findings
    assert finding.item_number == 12 and finding.opened_case
    case = c.sv.GetCase(spb.GetCaseRequest(name=finding.opened_case)).penalty_case
    assert list(case.triggers) == [spb.CASE_TRIGGER_REFUSED_IMPROVEMENT]  # 第二十六条（三）, as overridden


def test_an_overridden_review_trigger_opens_the_feedback_review_under_it_art27_d12(c, world):
    day = D(2026, 5, 26)
    d = on_site_dispatch(c, world, day)
    fb = spb.SupervisorFeedback(
        dispatch=d.name,
        supervisor=world["sups"][1],
        entry_time=h.at(day, 9, 5),
        exit_time=h.at(day, 11, 20),
        badge_worn=spb.ANSWER_VALUE_YES,
        duties_performed=spb.ANSWER_VALUE_YES,
        integrity_kept=spb.ANSWER_VALUE_NO,
        comments="收受考生礼品",
        signed_by="王校长",
    )
    req = spb.SubmitFeedbackRequest(feedback=fb, client_request_id=h.request_id("feedback"))
    review = c.sv.SubmitFeedback(req, metadata=h.md(h.HAIDIAN)).feedback.review_case
    case = c.sv.GetCase(spb.GetCaseRequest(name=review)).penalty_case
    assert list(case.triggers) == [spb.CASE_TRIGGER_SUPERVISOR_PRIVATE_GAIN]


def test_the_ladder_wording_comes_from_the_rule_set_art27_d13(c, world):
    sup = h.supervisor(c, "丙督导")[0]
    c.set_clock(dt.datetime(2026, 6, 2, 10, tzinfo=SHANGHAI))
    opened = spb.PenaltyCase(
        subject_kind=spb.CASE_SUBJECT_KIND_SUPERVISOR,
        subject=sup,
        triggers=[spb.CASE_TRIGGER_SUPERVISOR_DUTY_FAILURE],
        description="督导过程中擅自离场",
    )
    req = spb.OpenCaseRequest(penalty_case=opened, client_request_id=h.request_id("case"))
    case = c.sv.OpenCase(req, metadata=h.md(h.HAIDIAN)).penalty_case
    r = case.recommendation
    assert (r.rung, r.article) == (spb.PENALTY_RUNG_SUPERVISOR_CRITICISM, "第二十七条")
    assert r.sanction_text == "批评教育（覆盖）"
    decision = spb.CaseDecision(rung=spb.PENALTY_RUNG_SUPERVISOR_REVOCATION, official="海淀区鉴定所 周所长")
    decided = c.sv.RecordCaseDecision(
        spb.RecordCaseDecisionRequest(name=case.name, decision=decision), metadata=h.md(h.HAIDIAN)
    ).penalty_case
    assert [d.sanction_text for d in decided.decisions] == ["取消其外督员资格（覆盖）"]


def test_the_refuses_to_correct_escalation_is_the_rules_services_recommendation_art26_d13(c, world):
    inst = h.institution(c, "1100015002", "北京某某美容美发学校", "05")  # no case history
    c.set_clock(dt.datetime(2026, 7, 1, 9, tzinfo=SHANGHAI))
    opened = spb.PenaltyCase(
        subject_kind=spb.CASE_SUBJECT_KIND_INSTITUTION,
        subject=inst,
        triggers=[spb.CASE_TRIGGER_REFUSED_IMPROVEMENT],
        description="未按督导意见整改考场布置",
    )
    req = spb.OpenCaseRequest(penalty_case=opened, client_request_id=h.request_id("case"))
    case = c.sv.OpenCase(req, metadata=h.md(h.CITY)).penalty_case
    assert case.recommendation.sanction_text == "通报批评并责令改正（覆盖）"
    decision = spb.CaseDecision(
        rung=spb.PENALTY_RUNG_CRITICISM_AND_CORRECTION, official="刘主任", correction_deadline="2026-07-10"
    )
    c.sv.RecordCaseDecision(spb.RecordCaseDecisionRequest(name=case.name, decision=decision), metadata=h.md(h.CITY))
    c.set_clock(dt.datetime(2026, 7, 13, 9, tzinfo=SHANGHAI))
    assert case.name in c.sv.RunSweep(spb.RunSweepRequest(), metadata=h.md(h.OPERATOR)).escalated_cases
    r = c.sv.GetCase(spb.GetCaseRequest(name=case.name)).penalty_case.recommendation
    assert r.rung == spb.PENALTY_RUNG_DISCIPLINARY_RECOMMENDATION
    assert r.sanction_text == "向其主管部门提出给予处分的建议（覆盖）"
    assert "拒不改正" in r.explanation


def test_a_refused_dispatch_names_the_rules_decision_that_lists_every_finding_art16(c, world, stack):
    """Issue #14 item 7: the error details are bounded; the decision named in the metadata has them all."""
    examiner = h.supervisor(c, "戊督导")[0]
    c.set_clock(dt.datetime(2026, 6, 9, 9, tzinfo=SHANGHAI))
    plan = c.sv.CreatePlan(
        spb.CreatePlanRequest(
            plan=h.plan_msg(world["inst"], D(2026, 6, 10), examiners=[h.person("戊督导", sup=examiner)]),
            client_request_id=h.request_id("plan"),
        ),
        metadata=h.md(h.HAIDIAN),
    ).plan
    d = spb.Dispatch(
        plan=plan.name, dispatching_agency="agencies/08", form=spb.SUPERVISION_FORM_ON_SITE, session_ids=["S1"]
    )
    req = spb.CreateDispatchRequest(
        dispatch=d,
        selection=spb.TEAM_SELECTION_MANUAL,
        supervisors=[world["sups"][0], examiner],
        client_request_id=h.request_id("dispatch"),
    )
    with pytest.raises(grpc.RpcError) as e:
        c.sv.CreateDispatch(req, metadata=h.md(h.HAIDIAN))
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in rpc_status.from_call(e.value).details)
    assert info.reason == "TEAM_CHECK_FAILED" and info.metadata["decision"].startswith("decisions/")
    with auth_support.channel(stack.config.target("rules")) as channel:
        decision = (
            rules_pb2_grpc.RulesServiceStub(channel)
            .GetDecision(rules_pb2.GetDecisionRequest(name=info.metadata["decision"]))
            .decision
        )
    assert decision.outcome == rules_pb2.OUTCOME_DENY
    assert any("第十六条" in f.article and f.severity == rules_pb2.SEVERITY_BLOCKING for f in decision.findings)


def test_an_art27_case_against_an_internal_supervisor_is_refused_with_the_article_art27_art8(c, world):
    internal = h.internal_supervisor(c, "丁内督", world["inst"])
    c.set_clock(dt.datetime(2026, 6, 3, 10, tzinfo=SHANGHAI))
    opened = spb.PenaltyCase(
        subject_kind=spb.CASE_SUBJECT_KIND_SUPERVISOR,
        subject=internal,
        triggers=[spb.CASE_TRIGGER_SUPERVISOR_DUTY_FAILURE],
        description="内督员未认真履行职责",
    )
    req = spb.OpenCaseRequest(penalty_case=opened, client_request_id="art27-internal")
    with pytest.raises(grpc.RpcError) as e:
        c.sv.OpenCase(req, metadata=h.md(h.HAIDIAN))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    violations = []
    for detail in rpc_status.from_call(e.value).details:
        pf = error_details_pb2.PreconditionFailure()
        if detail.Unpack(pf):
            violations += pf.violations
    assert any(v.type == "bj-2022.art27.external-supervisors-only" and "第八条" in v.description for v in violations)
    listed = c.sv.ListCases(spb.ListCasesRequest(subject=internal), metadata=h.md(h.HAIDIAN))
    assert not listed.cases  # nothing half-written
