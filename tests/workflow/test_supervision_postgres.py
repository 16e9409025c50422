"""The workflow on PostgreSQL (scale-out storage): migration 0002 in the registry schema, instants and JSON
columns round-trip, row locks in the case sweep — one short flow from plan to closed period."""

from __future__ import annotations

import datetime as dt

import pytest
import wf_helpers as h

from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import supervision_pb2 as spb
from common.clock import SHANGHAI
from supervisionctl.natsd import free_port
from supervisionctl.stack import Stack, StackConfig

pytestmark = pytest.mark.postgres
D = dt.date


def test_flow_on_postgresql_from_plan_to_closed_period_art23_art26_d10(pg_url, tmp_path, wf_stack):
    url, prefix = pg_url
    cfg = StackConfig(data_dir=tmp_path, nats_port=free_port(), ports={n: free_port() for n in
                      ("registry", "rules", "documents", "notify")},
                      extra_env=h.workflow_env(DATABASE_URL=url, BJSV_DB_SCHEMA_PREFIX=prefix,
                                               BJSV_RULES_TARGET=wf_stack.config.target("rules")))  # fmt: skip
    stack = Stack(cfg, services=("registry",))
    stack.start(timeout=90)
    c = h.Clients(cfg.target("registry"))
    try:
        inst = h.institution(c, "1100019001", "北京某某职业技能培训学校", "05")
        a = h.supervisor(c, "周督导", district="05")[0]
        b = h.supervisor(c, "吴督导", district="05")[0]
        c.set_clock(dt.datetime(2026, 4, 1, 9, tzinfo=SHANGHAI))
        draft = h.plan_msg(inst, D(2026, 4, 2), candidates=80, district="05")
        req = spb.CreatePlanRequest(plan=draft, client_request_id="pg-plan")
        plan = c.sv.CreatePlan(req, metadata=h.md(h.CITY)).plan
        d = spb.Dispatch(
            plan=plan.name,
            dispatching_agency="agencies/05",
            form=spb.SUPERVISION_FORM_RECORDS_REVIEW,
            supervision_start_time=h.at(D(2026, 4, 3), 9),
            supervision_end_time=h.at(D(2026, 4, 3), 16),
        )
        dispatch = c.sv.CreateDispatch(spb.CreateDispatchRequest(
            dispatch=d, selection=spb.TEAM_SELECTION_MANUAL, supervisors=[a, b], client_request_id="pg-d"),
            metadata=h.md(("agencies/05", "district-agency"))).dispatch  # fmt: skip
        assert dispatch.record_due_date == "2026-04-13"  # Qingming 04-04..06; 5 working days after 04-03
        assert dispatch.supervision_start_time == h.at(D(2026, 4, 3), 9)
        h.declare(c, dispatch.name, a, b)
        c.set_clock(dt.datetime(2026, 4, 7, 10, tzinfo=SHANGHAI))
        no12 = h.answers(16, {12: "拒绝提供评分记录"})
        record = spb.SupervisionRecord(
            dispatch=dispatch.name,
            submitted_by=a,
            answers=no12,
            supervisor_signatures=["周督导", "吴督导"],
            sign_date="2026-04-07",
        )
        rec = c.sv.SubmitRecord(spb.SubmitRecordRequest(record=record, client_request_id="pg-r")).record
        case = rec.findings[0].opened_case
        assert case and rec.submit_time.ToDatetime(tzinfo=SHANGHAI).hour == 10
        c.sv.RecordCaseDecision(spb.RecordCaseDecisionRequest(name=case, decision=spb.CaseDecision(
            rung=spb.PENALTY_RUNG_CRITICISM_AND_CORRECTION, official="刘主任", correction_deadline="2026-04-10")),
            metadata=h.md(h.CITY))  # fmt: skip
        c.set_clock(dt.datetime(2026, 4, 16, 9, tzinfo=SHANGHAI))
        sweep = c.sv.RunSweep(spb.RunSweepRequest(), metadata=h.md(h.OPERATOR))
        assert list(sweep.escalated_cases) == [case]
        assert list(sweep.closed_reports) == ["reports/05/2026-04-1"]
        rpt = c.sv.GetDistrictReport(spb.GetDistrictReportRequest(name="reports/05/2026-04-1")).report
        assert (rpt.district_name, rpt.cases_opened, rpt.cases_decided, rpt.dispatches_created) == ("朝阳区", 1, 1, 1)
        assert [(n.item_number, n.count) for n in rpt.no_counts] == [(12, 1)]
        # 第二十七条 取消其外督员资格 on PostgreSQL: the revocation commits in the decision's own transaction.
        sup_case = c.sv.OpenCase(spb.OpenCaseRequest(penalty_case=spb.PenaltyCase(
            subject_kind=spb.CASE_SUBJECT_KIND_SUPERVISOR, subject=b, description="利用督导职务谋取私利",
            triggers=[spb.CASE_TRIGGER_SUPERVISOR_PRIVATE_GAIN]), client_request_id="pg-sup-case"),
            metadata=h.md(("agencies/05", "district-agency"))).penalty_case  # fmt: skip
        c.sv.RecordCaseDecision(spb.RecordCaseDecisionRequest(name=sup_case.name, decision=spb.CaseDecision(
            rung=spb.PENALTY_RUNG_SUPERVISOR_REVOCATION, official="朝阳区鉴定所 陈所长")),
            metadata=h.md(("agencies/05", "district-agency")))  # fmt: skip
        revoked = c.registry.GetSupervisor(rpb.GetSupervisorRequest(name=b)).supervisor
        assert revoked.status == rpb.APPOINTMENT_STATUS_REVOKED
    finally:
        c.close()
        stack.stop()
