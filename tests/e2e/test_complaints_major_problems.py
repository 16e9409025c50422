"""第二十二条(九)(十) end to end: a public complaint received by the city centre, investigated and linked to a
case; a major problem reported by a dispatched supervisor. Each reaches the recipients' notify inbox through
the registry's events (outbox → NATS → notify)."""

from __future__ import annotations

import datetime as dt
import time

import grpc
import pytest
import wf_helpers as h
from wf_helpers import error_reason

from bjsv.notify.v1 import notify_pb2 as npb
from bjsv.notify.v1 import notify_pb2_grpc
from bjsv.registry.v1 import supervision_pb2 as spb
from common.clock import SHANGHAI
from supervisionctl.stack import Stack
from tests import auth_support

D = dt.date


def inbox(stack: Stack, recipient: str, subject: str, timeout: float = 30.0) -> list[npb.Notification]:
    with auth_support.channel(stack.config.target("notify")) as ch:
        stub = notify_pb2_grpc.NotifyServiceStub(ch)
        deadline = time.monotonic() + timeout
        while True:
            req = npb.ListNotificationsRequest(recipient=recipient, subject=subject, page_size=50)
            found = list(stub.ListNotifications(req).notifications)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.3)


@pytest.fixture(scope="module")
def clients(e2e_stack: Stack):
    c = h.Clients(e2e_stack.config.target("registry"))
    yield c
    c.close()


def test_complaint_received_investigated_linked_to_a_case_and_notified_art22_9(clients, e2e_stack):
    c = clients
    inst = h.institution(c, "1100015005", "北京某某职业技能培训学校", "08")
    c.set_clock(dt.datetime(2026, 12, 7, 9, tzinfo=SHANGHAI))
    complaint = spb.Complaint(source="来信", subject=inst, content="考场内有人代考，监考人员未予制止")
    with pytest.raises(grpc.RpcError) as e:  # received by the city centre (配合市鉴定管理中心)
        c.sv.ReceiveComplaint(spb.ReceiveComplaintRequest(complaint=complaint, client_request_id="cp-0"),
                              metadata=h.md(h.HAIDIAN))  # fmt: skip
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    got = c.sv.ReceiveComplaint(spb.ReceiveComplaintRequest(complaint=complaint, client_request_id="cp-1"),
                                metadata=h.md(h.CITY)).complaint  # fmt: skip
    assert (got.state, got.subject_name, got.district) == (
        spb.COMPLAINT_STATE_RECEIVED,
        "北京某某职业技能培训学校",
        "08",
    )
    for agency in ("agencies/A", "agencies/08"):
        (note,) = inbox(e2e_stack, agency, got.name)
        assert note.kind == npb.NOTIFICATION_KIND_COMPLAINT_RECEIVED and "第二十二条" in note.body
    case = c.sv.OpenCase(spb.OpenCaseRequest(penalty_case=spb.PenaltyCase(
        subject_kind=spb.CASE_SUBJECT_KIND_INSTITUTION, subject=inst, triggers=[spb.CASE_TRIGGER_FALSIFICATION],
        description="经核实存在代考"), client_request_id="cp-case"), metadata=h.md(h.CITY)).penalty_case  # fmt: skip
    close = spb.RecordComplaintHandlingRequest(name=got.name, handling="调阅考场录像", close=True)
    with pytest.raises(grpc.RpcError) as e:
        c.sv.RecordComplaintHandling(close, metadata=h.md(h.HAIDIAN))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error_reason(e.value)[1][0].startswith("result|")
    close.result, close.penalty_case = "举报属实", case.name
    done = c.sv.RecordComplaintHandling(close, metadata=h.md(h.HAIDIAN)).complaint
    assert (done.state, done.penalty_case, done.result) == (spb.COMPLAINT_STATE_CLOSED, case.name, "举报属实")
    with pytest.raises(grpc.RpcError) as e:
        c.sv.RecordComplaintHandling(spb.RecordComplaintHandlingRequest(name=got.name, handling="补充"),
                                     metadata=h.md(h.CITY))  # fmt: skip
    assert error_reason(e.value)[0] == "COMPLAINT_CLOSED"
    assert c.sv.GetComplaint(spb.GetComplaintRequest(name=got.name)).complaint.close_time.seconds > 0


def test_major_problem_reported_by_a_dispatched_supervisor_reaches_agency_and_city_centre_art22_10(clients, e2e_stack):
    c = clients
    inst = h.institution(c, "1100015006", "北京某某焊接技术学校", "08")
    a, b, other = (h.supervisor(c, n)[0] for n in ("卫督导", "蒋督导", "沈督导"))
    c.set_clock(dt.datetime(2026, 12, 8, 9, tzinfo=SHANGHAI))
    req = spb.CreatePlanRequest(plan=h.plan_msg(inst, D(2026, 12, 9), candidates=60), client_request_id="mp-plan")
    plan = c.sv.CreatePlan(req, metadata=h.md(h.HAIDIAN)).plan
    d = c.sv.CreateDispatch(spb.CreateDispatchRequest(
        dispatch=spb.Dispatch(plan=plan.name, dispatching_agency="agencies/08", form=spb.SUPERVISION_FORM_ON_SITE),
        selection=spb.TEAM_SELECTION_MANUAL, supervisors=[a, b], client_request_id="mp-d"),
        metadata=h.md(h.HAIDIAN)).dispatch  # fmt: skip
    report = spb.MajorProblemReport(dispatch=d.name, reported_by=other, findings="同一批次多名考生答卷雷同",
                                    suggestions="建议暂停该机构本职业认定并全面复核")  # fmt: skip
    with pytest.raises(grpc.RpcError) as e:
        c.sv.ReportMajorProblem(spb.ReportMajorProblemRequest(report=report, client_request_id="mp-0"))
    assert error_reason(e.value)[0] == "NOT_A_DISPATCHED_SUPERVISOR"
    report.reported_by = a
    out = c.sv.ReportMajorProblem(spb.ReportMajorProblemRequest(report=report, client_request_id="mp-1")).report
    again = c.sv.ReportMajorProblem(spb.ReportMajorProblemRequest(report=report, client_request_id="mp-1")).report
    assert out.name == again.name and list(out.recipients) == ["agencies/08", "agencies/A"]
    for agency in ("agencies/08", "agencies/A"):
        (note,) = inbox(e2e_stack, agency, out.name)
        assert note.kind == npb.NOTIFICATION_KIND_MAJOR_PROBLEM_REPORTED
        assert "卫督导" in note.body and "建议" in note.body and "第二十二条" in note.body
