"""Scope and personal information with real resources (issue #12), and each attack of the issue replayed:
a district official stays inside their district, a supervisor sees themself, personal data is masked for
everyone but the appointing organisation and the person, and what a caller declares in metadata is ignored.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bjsv.documents.v1 import documents_pb2, documents_pb2_grpc
from bjsv.events.v1 import envelope_pb2
from bjsv.notify.v1 import notify_pb2, notify_pb2_grpc
from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import registry_pb2_grpc
from bjsv.registry.v1 import supervision_pb2 as spb
from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from common import clients
from common.auth.config import AuthSettings
from common.auth.guard import Guard, Unimplemented
from common.clock import SHANGHAI
from common.errors import ResourceExhausted
from supervisionctl.stack import Stack
from tests import auth_support
from tests.conftest import stack_config
from tests.workflow import wf_helpers as h

D08 = ("agencies/08", "district-agency")
D05 = ("agencies/05", "district-agency")
AUDITOR = ("auditors/audit-office", "auditor")


@pytest.fixture(scope="module")
def scoped(tmp_path_factory):
    s = Stack(stack_config(tmp_path_factory.mktemp("scope"), BJSV_SUPERVISION_TEST_CLOCK="1"))
    s.start(timeout=90)
    c = h.Clients(s.config.target("registry"))
    sup08, _ = h.supervisor(c, "赵督导", district="08")
    sup05, _ = h.supervisor(c, "钱督导", district="05")
    yield s, c, sup08, sup05
    c.close()
    s.stop()


def reason(e: grpc.RpcError) -> str:
    for detail in rpc_status.from_call(e).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


def refused(fn, request, who) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        fn(request, metadata=auth_support.bearer(*who) if who else ())
    return e.value.code(), reason(e.value)


def outbox(stack: Stack, service: str = "registry") -> list[envelope_pb2.EventEnvelope]:
    with sqlite3.connect(Path(stack.config.data_dir) / f"{service}.db") as db:
        rows = db.execute("SELECT envelope FROM outbox ORDER BY seq").fetchall()
    return [envelope_pb2.EventEnvelope.FromString(r[0]) for r in rows]


def test_district_official_reads_own_district_supervisor_not_anothers(scoped):
    _, c, sup08, sup05 = scoped
    got = c.registry.GetSupervisor(rpb.GetSupervisorRequest(name=sup08), metadata=auth_support.bearer(*D08))
    assert got.supervisor.district_code == "08"
    assert refused(c.registry.GetSupervisor, rpb.GetSupervisorRequest(name=sup05), D08) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "OUT_OF_SCOPE",
    )


def test_district_official_cannot_change_another_districts_supervisor_and_nothing_is_written(scoped):
    stack, c, sup08, _ = scoped
    before = len(outbox(stack))
    request = rpb.UpdateSupervisorRequest(
        supervisor=rpb.Supervisor(name=sup08, phone="13999999999"),
        update_mask=field_mask_pb2.FieldMask(paths=["phone"]),
    )
    assert refused(c.registry.UpdateSupervisor, request, D05)[0] == grpc.StatusCode.PERMISSION_DENIED
    assert refused(c.registry.SuspendAppointment, rpb.SuspendAppointmentRequest(name="appointments/1",
                   reason="x", article="第二十七条"), D05)[0] == grpc.StatusCode.PERMISSION_DENIED  # fmt: skip
    assert len(outbox(stack)) == before
    full = c.registry.GetSupervisor(rpb.GetSupervisorRequest(name=sup08, view=rpb.VIEW_FULL), metadata=h.md(D08))
    assert full.supervisor.phone == "13800000000"


def test_list_calls_are_filtered_to_the_callers_district(scoped):
    _, c, sup08, sup05 = scoped
    listed = c.registry.ListSupervisors(rpb.ListSupervisorsRequest(page_size=500), metadata=h.md(D08)).supervisors
    assert sup08 in {s.name for s in listed} and sup05 not in {s.name for s in listed}
    assert {s.district_code for s in listed} == {"08"}
    asked_other = rpb.ListSupervisorsRequest(district_code="05")
    assert refused(c.registry.ListSupervisors, asked_other, D08) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    everyone = c.registry.ListSupervisors(rpb.ListSupervisorsRequest(page_size=500), metadata=h.md(h.CITY))
    assert {sup08, sup05} <= {s.name for s in everyone.supervisors}


def test_supervisor_sees_themself_in_full_and_no_one_else(scoped):
    _, c, sup08, sup05 = scoped
    me = (sup08, "supervisor")
    own = c.registry.GetSupervisor(rpb.GetSupervisorRequest(name=sup08, view=rpb.VIEW_FULL), metadata=h.md(me))
    assert "*" not in own.supervisor.id_number and own.supervisor.photo
    code, _ = refused(c.registry.GetSupervisor, rpb.GetSupervisorRequest(name=sup05), me)
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_personal_information_is_masked_except_for_the_appointing_agency(scoped):
    _, c, sup08, _ = scoped
    request = rpb.GetSupervisorRequest(name=sup08, view=rpb.VIEW_FULL)
    appointing = c.registry.GetSupervisor(request, metadata=h.md(D08)).supervisor
    audited = c.registry.GetSupervisor(request, metadata=h.md(AUDITOR)).supervisor
    assert "*" not in appointing.id_number and appointing.phone == "13800000000" and appointing.photo
    assert audited.id_number == appointing.id_number[:6] + "*" * 8 + appointing.id_number[-4:]
    assert audited.phone == "138****0000" and not audited.photo


# -- the attacks of issue #12, replayed -------------------------------------------------------------------


def test_without_credentials_nothing_changes_art11_art27(scoped):
    stack, _, sup08, _ = scoped
    before = len(outbox(stack))
    attempts = [
        ("IssueBadge", rpb.IssueBadgeRequest(appointment="appointments/1")),
        ("RegisterSupervisor", rpb.RegisterSupervisorRequest(supervisor=rpb.Supervisor(full_name="冒名"))),
        ("AppointSupervisor", rpb.AppointSupervisorRequest(supervisor=sup08)),
        ("UpdateAgency", rpb.UpdateAgencyRequest(agency=rpb.Agency(name="agencies/A", contact="x"))),
        ("SuspendAppointment", rpb.SuspendAppointmentRequest(name="appointments/1")),
        ("RevokeBadge", rpb.RevokeBadgeRequest(name="badges/R1122A001")),
    ]
    with clients.sync_channel(stack.config.target("registry")) as bare:  # a hostile caller (TLS), no token at all
        stub = registry_pb2_grpc.RegistryServiceStub(bare)
        for name, request in attempts:
            with pytest.raises(grpc.RpcError) as e:
                getattr(stub, name)(request, timeout=10)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
    assert len(outbox(stack)) == before


def test_declared_org_and_role_metadata_are_ignored_actor_comes_from_the_token(scoped):
    stack, c, sup08, _ = scoped
    spoof = (("x-bjsv-org", "../../etc/passwd' OR 1=1 --"), ("x-bjsv-role", "city-centre"))
    sweep = rpb.RunExpirySweepRequest(as_of_date="2099-12-31")
    with pytest.raises(grpc.RpcError) as e:
        c.registry.RunExpirySweep(sweep, metadata=(*spoof, *h.md(D08)))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    c.registry.UpdateSupervisor(
        rpb.UpdateSupervisorRequest(supervisor=rpb.Supervisor(name=sup08, phone="13800000000"),
                                    update_mask=field_mask_pb2.FieldMask(paths=["phone"])),
        metadata=(*spoof, *h.md(D08)),
    )  # fmt: skip
    last = outbox(stack)[-1]
    assert (last.type, last.actor) == ("supervisor.updated", "agencies/08")


def test_a_district_official_cannot_act_for_the_city_centre(scoped):
    _, c, _, _ = scoped
    update_city = rpb.UpdateAgencyRequest(
        agency=rpb.Agency(name="agencies/A", contact="x"), update_mask=field_mask_pb2.FieldMask(paths=["contact"])
    )
    assert refused(c.registry.UpdateAgency, update_city, D08) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")


def test_an_institution_cannot_dispatch_as_the_city_centre_art14(scoped):
    _, c, _, _ = scoped
    dispatch = spb.CreateDispatchRequest(dispatch=spb.Dispatch(plan="plans/1", dispatching_agency="agencies/A"))
    institution = ("institutions/1100081001", "institution")
    denied = (grpc.StatusCode.PERMISSION_DENIED, "ACTING_ORG_MISMATCH")
    assert refused(c.sv.CreateDispatch, dispatch, institution) == denied


def test_clock_and_rule_set_reload_need_the_operator(scoped):
    stack, _, _, _ = scoped
    with clients.sync_channel(stack.config.target("notify")) as ch:
        notify = notify_pb2_grpc.NotifyServiceStub(ch)
        assert refused(notify.SetClock, notify_pb2.SetClockRequest(offset_seconds=400 * 86400), h.CITY)[0] == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        assert refused(notify.RunDueTimers, notify_pb2.RunDueTimersRequest(), D08)[0] == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    with clients.sync_channel(stack.config.target("rules")) as ch:
        reload = rules_pb2_grpc.RulesServiceStub(ch).ReloadRuleSet
        assert refused(reload, rules_pb2.ReloadRuleSetRequest(), h.CITY)[0] == grpc.StatusCode.PERMISSION_DENIED


async def test_test_clock_rpcs_do_not_exist_when_the_test_clock_is_off(monkeypatch):
    monkeypatch.setenv("BJSV_TEST_CLOCK", "0")
    monkeypatch.delenv("BJSV_SUPERVISION_TEST_CLOCK", raising=False)
    guard = Guard(AuthSettings())
    for method in (
        "/bjsv.notify.v1.NotifyService/SetClock",
        "/bjsv.registry.v1.SupervisionService/SetSupervisionClock",
    ):
        with pytest.raises(Unimplemented):
            await guard.admit(method, {"authorization": f"Bearer {auth_support.token(*h.OPERATOR)}"}, "ipv4:1:2")


def test_contacts_and_stored_documents_are_not_open(scoped):
    stack, _, _, _ = scoped
    with clients.sync_channel(stack.config.target("notify")) as ch:
        notify = notify_pb2_grpc.NotifyServiceStub(ch)
        contact = notify_pb2.Contact(recipient="agencies/08", email="zhang.san@example.cn", display_name="海淀")
        notify.SetContact(notify_pb2.SetContactRequest(contact=contact), metadata=h.md(D08))
        seen = notify.ListContacts(notify_pb2.ListContactsRequest(), metadata=h.md(AUDITOR)).contacts
        assert [x.email for x in seen if x.recipient == "agencies/08"] == ["z***@example.cn"]
    with clients.sync_channel(stack.config.target("documents")) as ch:
        get = documents_pb2_grpc.DocumentsServiceStub(ch).GetDocument
        with pytest.raises(grpc.RpcError) as e:
            list(get(documents_pb2.GetDocumentRequest(name="documents/1"), metadata=h.md(h.OPERATOR)))
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_stored_badge_pdfs_are_seen_by_the_appointing_district_and_the_holder_only(scoped):
    """第十条、第十一条 and 个人信息保护法: a badge PDF (photo, name) is the appointing agency's and its holder's;
    another district, an institution and another supervisor are refused, in the list and one by one."""
    stack, c, sup08, sup05 = scoped
    subject = {
        sup: "badges/"
        + c.registry.ListBadges(rpb.ListBadgesRequest(supervisor=sup), metadata=h.md(h.CITY)).badges[0].code
        for sup in (sup08, sup05)
    }
    with clients.sync_channel(stack.config.target("documents")) as ch:
        docs = documents_pb2_grpc.DocumentsServiceStub(ch)

        def listed(who: tuple[str, str]) -> dict[str, str]:
            req = documents_pb2.ListDocumentsRequest(kind=documents_pb2.DOCUMENT_KIND_BADGE, page_size=500)
            return {d.subject: d.name for d in docs.ListDocuments(req, metadata=h.md(who)).documents}

        def status(who: tuple[str, str], name: str) -> grpc.StatusCode:
            try:
                list(docs.GetDocument(documents_pb2.GetDocumentRequest(name=name), metadata=h.md(who)))
                return grpc.StatusCode.OK
            except grpc.RpcError as e:
                return e.code()

        deadline = time.monotonic() + 60  # rendered from badge.issued: wait until both are stored
        while not set(subject.values()) <= set(everything := listed(h.CITY)) and time.monotonic() < deadline:
            time.sleep(0.2)
        b08, b05 = everything[subject[sup08]], everything[subject[sup05]]
        own08 = listed(D08)
        assert subject[sup08] in own08 and subject[sup05] not in own08
        assert status(D05, b08) == grpc.StatusCode.PERMISSION_DENIED and status(D05, b05) == grpc.StatusCode.OK
        assert status(D08, b08) == grpc.StatusCode.OK
        holder = (sup08, "supervisor")
        assert set(listed(holder)) == {subject[sup08]} and status(holder, b08) == grpc.StatusCode.OK
        assert status(holder, b05) == grpc.StatusCode.PERMISSION_DENIED
        institution = ("institutions/1100081001", "institution")
        assert listed(institution) == {} and status(institution, b08) == grpc.StatusCode.PERMISSION_DENIED


async def test_verify_badge_is_public_but_rate_limited_per_client_address(monkeypatch):
    monkeypatch.setenv("BJSV_AUTHZ_PUBLIC_RATE", "5")
    guard = Guard(AuthSettings())
    method = "/bjsv.registry.v1.RegistryService/VerifyBadge"

    async def burst(peer: str) -> int:
        admitted = 0
        for _ in range(8):
            try:
                await guard.admit(method, {}, peer)  # no token: the exam door is public
                admitted += 1
            except ResourceExhausted:
                pass
        return admitted

    assert await burst("ipv4:10.0.0.1:5000") == 5
    assert await burst("ipv4:10.0.0.2:5001") == 5  # another address has its own budget


# -- the supervision workflow: plans, dispatches, records, cases and reports stay in their district -------

DENIED = (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")


@pytest.fixture(scope="module")
def wf(scoped):
    """District 08's plan, dispatch (two 08 supervisors), Annex 3 record, case and closed half-month report,
    and district 05's plan, all made by their own district officials."""
    _, c, sup08, _ = scoped
    inst08 = h.institution(c, "1100081001", "海淀某职业技能评价机构", "08")
    inst05 = h.institution(c, "1100050505", "朝阳某职业技能评价机构", "05")
    sup08b, badge = h.supervisor(c, "孙督导", district="08")
    c.set_clock(dt.datetime(2026, 3, 9, 9, tzinfo=SHANGHAI))
    day = dt.date(2026, 3, 10)
    plan08 = c.sv.CreatePlan(spb.CreatePlanRequest(plan=h.plan_msg(inst08, day), client_request_id="p08"),
                             metadata=h.md(D08)).plan  # fmt: skip
    plan05 = c.sv.CreatePlan(spb.CreatePlanRequest(plan=h.plan_msg(inst05, day, district="05"),
                             client_request_id="p05"), metadata=h.md(D05)).plan  # fmt: skip
    dispatch = c.sv.CreateDispatch(spb.CreateDispatchRequest(
        dispatch=spb.Dispatch(plan=plan08.name, form=spb.SUPERVISION_FORM_ON_SITE),  # agency from the token
        selection=spb.TEAM_SELECTION_MANUAL, supervisors=[sup08, sup08b], client_request_id="d08",
    ), metadata=h.md(D08)).dispatch  # fmt: skip
    h.declare(c, dispatch.name, sup08, sup08b)
    c.set_clock(dt.datetime(2026, 3, 10, 18, tzinfo=SHANGHAI))
    record = c.sv.SubmitRecord(
        spb.SubmitRecordRequest(record=record_msg(dispatch.name, sup08), client_request_id="r08"),
        metadata=h.md((sup08, "supervisor")),
    ).record
    case = c.sv.OpenCase(spb.OpenCaseRequest(penalty_case=spb.PenaltyCase(
        subject_kind=spb.CASE_SUBJECT_KIND_SUPERVISOR, subject=sup08b, description="擅自离场",
        triggers=[spb.CASE_TRIGGER_SUPERVISOR_DUTY_FAILURE]), client_request_id="c08"), metadata=h.md(D08),
    ).penalty_case  # fmt: skip
    complaint = c.sv.ReceiveComplaint(spb.ReceiveComplaintRequest(complaint=spb.Complaint(
        source="来信", subject=sup08b, content="督导员擅自离场"), client_request_id="cp08"), metadata=h.md(h.CITY),
    ).complaint  # fmt: skip
    c.set_clock(dt.datetime(2026, 3, 17, 9, tzinfo=SHANGHAI))
    closed = c.sv.ClosePeriod(spb.ClosePeriodRequest(date="2026-03-10"), metadata=h.md(D08)).reports
    return {"plan08": plan08, "plan05": plan05, "dispatch": dispatch, "record": record, "case": case,
            "complaint": complaint, "reports08": closed, "sup08b": sup08b, "badge": badge}  # fmt: skip


def record_msg(dispatch: str, submitted_by: str) -> spb.SupervisionRecord:
    return spb.SupervisionRecord(dispatch=dispatch, submitted_by=submitted_by, answers=h.answers(17),
                                 supervisor_signatures=["赵督导", "孙督导"], institution_head_signature="李主任",
                                 sign_date="2026-03-10")  # fmt: skip


def test_a_district_agency_answered_by_close_period_sees_only_its_own_report_art24(wf):
    assert [r.name.split("/")[1] for r in wf["reports08"]] == ["08"]


def test_a_district_official_cannot_read_another_districts_workflow_art18_art22_art24_art26(scoped, wf):
    _, c, _, _ = scoped
    plan, dispatch, record, case = wf["plan08"], wf["dispatch"], wf["record"], wf["case"]
    report = wf["reports08"][0].name
    reads = [
        (c.sv.GetPlan, spb.GetPlanRequest(name=plan.name)),
        (c.sv.GetPlanStatus, spb.GetPlanStatusRequest(plan=plan.name)),
        (c.sv.BatchGetPlanStatuses, spb.BatchGetPlanStatusesRequest(plans=[plan.name])),
        (c.sv.GetDispatch, spb.GetDispatchRequest(name=dispatch.name)),
        (c.sv.GetRecord, spb.GetRecordRequest(name=record.name)),
        (c.sv.ListRecordVersions, spb.ListRecordVersionsRequest(name=record.name)),
        (c.sv.GetCase, spb.GetCaseRequest(name=case.name)),
        (c.sv.GetDistrictReport, spb.GetDistrictReportRequest(name=report)),
        (c.sv.GetComplaint, spb.GetComplaintRequest(name=wf["complaint"].name)),
    ]
    for fn, request in reads:
        fn(request, metadata=h.md(D08))  # the district's own official reads each of them
        assert refused(fn, request, D05) == DENIED, type(request).__name__
    # A batch with one plan out of scope is refused as a whole (AIP-231), its own plan alongside or not.
    both = spb.BatchGetPlanStatusesRequest(plans=[wf["plan05"].name, plan.name])
    assert refused(c.sv.BatchGetPlanStatuses, both, D05) == DENIED


def test_a_district_official_cannot_write_another_districts_workflow_and_nothing_is_written(scoped, wf):
    stack, c, sup08, sup05 = scoped
    plan, dispatch, record, case = wf["plan08"], wf["dispatch"], wf["record"], wf["case"]
    before = len(outbox(stack))
    changed = spb.Plan(name=plan.name, etag=plan.etag)
    changed.CopyFrom(plan)
    changed.title = "被改写的计划"
    on_site = spb.SUPERVISION_FORM_ON_SITE
    writes = [
        (c.sv.UpdatePlan, spb.UpdatePlanRequest(plan=changed)),
        (c.sv.CreatePlan, spb.CreatePlanRequest(plan=h.plan_msg("institutions/1100081001", dt.date(2026, 3, 20)),
                                                client_request_id="p08-by-05")),
        (c.sv.ProposeDispatch, spb.ProposeDispatchRequest(plan=plan.name, form=on_site, team_size=2, seed="x")),
        (c.sv.CreateDispatch, spb.CreateDispatchRequest(dispatch=spb.Dispatch(plan=plan.name, form=on_site),
                                                        selection=spb.TEAM_SELECTION_MANUAL,
                                                        supervisors=[sup05, sup08], client_request_id="d08-by-05")),
        (c.sv.CancelDispatch, spb.CancelDispatchRequest(name=dispatch.name, reason="越权取消")),
        (c.sv.ReplaceDispatchMember, spb.ReplaceDispatchMemberRequest(name=dispatch.name, supervisor=sup08,
                                                                      replacement=sup05, reason="越权调换")),
        (c.sv.CorrectRecord, spb.CorrectRecordRequest(name=record.name, record=record_msg(dispatch.name, sup08),
                                                      reason="越权更正", client_request_id="r08-by-05")),
        (c.sv.OpenCase, spb.OpenCaseRequest(penalty_case=spb.PenaltyCase(
            subject_kind=spb.CASE_SUBJECT_KIND_SUPERVISOR, subject=sup08, description="越权立案",
            triggers=[spb.CASE_TRIGGER_SUPERVISOR_DUTY_FAILURE]), client_request_id="c08-by-05")),
        (c.sv.RecordCaseDecision, spb.RecordCaseDecisionRequest(name=case.name, decision=spb.CaseDecision(
            rung=spb.PENALTY_RUNG_SUPERVISOR_SUSPENSION, official="朝阳区 某所长"))),
        (c.sv.RecordCorrection, spb.RecordCorrectionRequest(name=case.name, note="越权记录整改")),
        (c.sv.SubmitFeedback, spb.SubmitFeedbackRequest(feedback=spb.SupervisorFeedback(
            dispatch=dispatch.name, supervisor=sup08, signed_by="李主任"), client_request_id="f08-by-05")),
        (c.sv.RecordComplaintHandling, spb.RecordComplaintHandlingRequest(name=wf["complaint"].name,
                                                                          handling="越权办理", close=True)),
    ]  # fmt: skip
    for fn, request in writes:
        assert refused(fn, request, D05) == DENIED, type(request).__name__
    assert len(outbox(stack)) == before
    again = c.sv.GetPlan(spb.GetPlanRequest(name=plan.name), metadata=h.md(D08)).plan
    assert again.title == plan.title and again.etag == plan.etag
    assert c.sv.GetDispatch(spb.GetDispatchRequest(name=dispatch.name), metadata=h.md(D08)).dispatch.state == (
        dispatch.state
    )


def test_workflow_list_calls_return_only_the_callers_scope(scoped, wf):
    _, c, sup08, sup05 = scoped
    plans05 = {p.name for p in c.sv.ListPlans(spb.ListPlansRequest(page_size=100), metadata=h.md(D05)).plans}
    assert wf["plan05"].name in plans05 and wf["plan08"].name not in plans05
    assert refused(c.sv.ListPlans, spb.ListPlansRequest(district="08"), D05) == DENIED
    city = {p.name for p in c.sv.ListPlans(spb.ListPlansRequest(page_size=100), metadata=h.md(h.CITY)).plans}
    assert {wf["plan05"].name, wf["plan08"].name} <= city
    listed = spb.ListDispatchesRequest(page_size=100, include_cancelled=True)
    assert not c.sv.ListDispatches(listed, metadata=h.md(D05)).dispatches
    assert [d.name for d in c.sv.ListDispatches(listed, metadata=h.md(D08)).dispatches] == [wf["dispatch"].name]
    cases05 = c.sv.ListCases(spb.ListCasesRequest(page_size=100), metadata=h.md(D05))
    assert not cases05.cases and cases05.total_size == 0
    cases08 = c.sv.ListCases(spb.ListCasesRequest(page_size=100), metadata=h.md(D08)).cases
    assert wf["case"].name in {x.name for x in cases08}
    # a supervisor sees the plans and dispatches whose team they are on, and no other
    on_team, off_team = h.md((sup08, "supervisor")), h.md((sup05, "supervisor"))
    assert [p.name for p in c.sv.ListPlans(spb.ListPlansRequest(), metadata=on_team).plans] == [wf["plan08"].name]
    assert not c.sv.ListPlans(spb.ListPlansRequest(), metadata=off_team).plans
    assert [d.name for d in c.sv.ListDispatches(listed, metadata=on_team).dispatches] == [wf["dispatch"].name]
    assert not c.sv.ListDispatches(listed, metadata=off_team).dispatches
    assert refused(c.sv.GetDispatch, spb.GetDispatchRequest(name=wf["dispatch"].name), (sup05, "supervisor")) == (
        DENIED
    )


def test_a_supervisor_cannot_submit_or_correct_another_supervisors_record_art23(scoped, wf):
    stack, c, sup08, _ = scoped
    before = len(outbox(stack))
    as_colleague = (wf["sup08b"], "supervisor")  # on the same team, but the record names 赵督导
    correct = spb.CorrectRecordRequest(name=wf["record"].name, record=record_msg(wf["dispatch"].name, sup08),
                                       reason="代他人更正", client_request_id="r08-by-colleague")  # fmt: skip
    denied = (grpc.StatusCode.PERMISSION_DENIED, "ACTING_ORG_MISMATCH")
    assert refused(c.sv.CorrectRecord, correct, as_colleague) == denied
    submit = spb.SubmitRecordRequest(record=record_msg(wf["dispatch"].name, sup08), client_request_id="r08-again")
    assert refused(c.sv.SubmitRecord, submit, as_colleague) == denied
    assert len(outbox(stack)) == before


def test_a_case_decision_is_recorded_for_the_callers_own_organisation_art26(scoped, wf):
    _, c, _, _ = scoped
    as_city = spb.RecordCaseDecisionRequest(name=wf["case"].name, decision=spb.CaseDecision(
        rung=spb.PENALTY_RUNG_SUPERVISOR_SUSPENSION, official="海淀区 周所长", official_org="agencies/A"))  # fmt: skip
    assert refused(c.sv.RecordCaseDecision, as_city, D08) == (grpc.StatusCode.PERMISSION_DENIED, "ACTING_ORG_MISMATCH")


def test_verify_badge_answers_only_what_the_badge_face_shows(scoped, wf):
    stack, _, _, _ = scoped
    with clients.sync_channel(stack.config.target("registry")) as bare:  # the exam door: public, no token
        got = registry_pb2_grpc.RegistryServiceStub(bare).VerifyBadge(rpb.VerifyBadgeRequest(code=wf["badge"]))
    assert got.code == wf["badge"] and got.holder_name_masked
    assert not got.id_number_masked  # the badge face carries no ID number (附件2, 个人信息保护法)


def test_a_supervisor_lists_only_their_own_badges(scoped):
    """第十一条: the *my badge* page — a supervisor lists their own badges; naming another is refused."""
    _, c, sup08, sup05 = scoped
    holder = (sup08, "supervisor")
    mine = c.registry.ListBadges(rpb.ListBadgesRequest(), metadata=h.md(holder)).badges
    assert mine and {b.supervisor for b in mine} == {sup08}
    with pytest.raises(grpc.RpcError) as e:
        c.registry.ListBadges(rpb.ListBadgesRequest(supervisor=sup05), metadata=h.md(holder))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
