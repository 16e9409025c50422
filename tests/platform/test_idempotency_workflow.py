"""Every create/issue/submit RPC of the registry is idempotent on `request_id` (issue 13 item 5, AIP-155):
CreateInstitution, RegisterSupervisor, AppointSupervisor, IssueBadge, CreatePlan, CreateDispatch, SubmitRecord,
CorrectRecord, SubmitFeedback, OpenCase. For each: the retry returns the original result from the stored
response; with the stored response gone (what a process killed between commit and response leaves, see
test_idempotency_registry.py) the retry rebuilds it for the same resource; the same key with another request
is REQUEST_ID_REUSED; and no retry writes a row."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sqlite3
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import supervision_pb2 as spb
from common.clock import SHANGHAI
from supervisionctl.stack import Stack
from tests.conftest import stack_config

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("wf_helpers", ROOT / "tests" / "workflow" / "wf_helpers.py")
h = sys.modules.get("wf_helpers") or importlib.util.module_from_spec(_spec)
if "wf_helpers" not in sys.modules:
    sys.modules["wf_helpers"] = h
    _spec.loader.exec_module(h)
D = dt.date


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    stack = Stack(stack_config(tmp_path_factory.mktemp("idem"), **h.workflow_env()), services=("rules", "registry"))
    stack.start(timeout=90)
    clients = h.Clients(stack.config.target("registry"))
    yield clients, stack.config.data_dir / "registry.db"
    clients.close()
    stack.stop()


def row_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        # the audit chain records every call, retries and refusals included (第二十二条): not a write of the call
        return {
            t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables if not t.startswith("audit_")
        }


def forget_response(db: Path, request_id: str) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("UPDATE idempotency_key SET response = NULL WHERE request_id = ?", (request_id,)).rowcount


def reason(err: grpc.RpcError) -> str:
    info = error_details_pb2.ErrorInfo()
    return next((info.reason for d in rpc_status.from_call(err).details if d.Unpack(info)), "")


def idempotent_call(db: Path, call, request, md, mutate: Callable[[object], None]):
    """The first call, then the three retries; returns the first response's resource."""
    first = call(request, metadata=md)
    (name,) = [f.name for f in first.DESCRIPTOR.fields]
    created = getattr(first, name)
    before = row_counts(db)
    assert getattr(call(request, metadata=md), name) == created, name  # replayed bytes
    forget_response(db, request.request_id)
    assert getattr(call(request, metadata=md), name).name == created.name, name  # rebuilt from the resource
    other = type(request)()
    other.CopyFrom(request)
    mutate(other)
    with pytest.raises(grpc.RpcError) as reused:
        call(other, metadata=md)
    assert reused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and reason(reused.value) == "REQUEST_ID_REUSED"
    assert row_counts(db) == before, name  # no retry wrote anything
    return created


def key() -> str:
    return str(uuid.uuid4())


def test_every_create_issue_submit_rpc_returns_its_original_result_on_retry(registry):
    c, db = registry
    city, haidian = h.md(h.CITY), h.md(h.HAIDIAN)
    c.set_clock(dt.datetime(2026, 3, 9, 9, tzinfo=SHANGHAI))
    inst = rpb.Institution(number="1100012001", type=rpb.INSTITUTION_TYPE_EMPLOYER, display_name="北京某某电力公司",
                           district_code="08", contact="010-00000000")  # fmt: skip
    inst = idempotent_call(db, c.registry.CreateInstitution, rpb.CreateInstitutionRequest(
        institution=inst, request_id=key()), city, lambda r: setattr(r.institution, "contact", "010-1"))  # fmt: skip

    number = h.new_id_number()
    sup = rpb.Supervisor(
        full_name="张督导", gender=rpb.GENDER_MALE if int(number[16]) % 2 else rpb.GENDER_FEMALE,
        birth_date=f"{number[6:10]}-{number[10:12]}-{number[12:14]}", id_number=number,
        type=rpb.SUPERVISOR_TYPE_EXTERNAL, level=rpb.SUPERVISOR_LEVEL_DISTRICT, district_code="08",
        phone="13800000000", photo=h.photo(), attestations=h.ATTESTED,
        training=rpb.TrainingAssessment(passed=True, assessed_by="市鉴定管理中心", assessed_date="2025-05-01"),
    )  # fmt: skip
    zhang = idempotent_call(db, c.registry.RegisterSupervisor, rpb.RegisterSupervisorRequest(
        supervisor=sup, request_id=key()), haidian, lambda r: setattr(r.supervisor, "phone", "139"))  # fmt: skip
    appt = idempotent_call(db, c.registry.AppointSupervisor, rpb.AppointSupervisorRequest(
        supervisor=zhang.name, start_date="2025-06-01", appointed_by="主任 王某", request_id=key()), haidian,
        lambda r: setattr(r, "appointed_by", "主任 李某"))  # fmt: skip
    idempotent_call(db, c.registry.IssueBadge, rpb.IssueBadgeRequest(appointment=appt.name, request_id=key()), city,
                    lambda r: setattr(r, "issue_date", "2025-06-02"))  # fmt: skip
    wang = h.supervisor(c, "王督导")[0]

    plan = idempotent_call(db, c.sv.CreatePlan, spb.CreatePlanRequest(
        plan=h.plan_msg(inst.name, D(2026, 3, 10)), request_id=key()), haidian,
        lambda r: setattr(r.plan, "title", "另一计划"))  # fmt: skip
    d = spb.Dispatch(plan=plan.name, dispatching_agency="agencies/08", form=spb.SUPERVISION_FORM_ON_SITE)
    dispatch = idempotent_call(db, c.sv.CreateDispatch, spb.CreateDispatchRequest(
        dispatch=d, selection=spb.TEAM_SELECTION_MANUAL, supervisors=[zhang.name, wang], request_id=key()), haidian,
        lambda r: r.supervisors.reverse())  # fmt: skip
    h.declare(c, dispatch.name, zhang.name, wang)  # 第十六条: before acting

    c.set_clock(dt.datetime(2026, 3, 11, 10, tzinfo=SHANGHAI))
    record = spb.SupervisionRecord(
        dispatch=dispatch.name, submitted_by=zhang.name, answers=h.answers(17), problems="无",
        supervisor_signatures=["张督导", "王督导"], institution_head_signature="李主任", sign_date="2026-03-10",
    )  # fmt: skip
    submitted = idempotent_call(db, c.sv.SubmitRecord, spb.SubmitRecordRequest(record=record, request_id=key()),
                                haidian, lambda r: setattr(r.record, "problems", "有"))  # fmt: skip
    fix = spb.SupervisionRecord(submitted_by=zhang.name, answers=h.answers(17, {17: "无录像"}),
                                supervisor_signatures=["张督导"], sign_date="2026-03-11")  # fmt: skip
    corrected = idempotent_call(db, c.sv.CorrectRecord, spb.CorrectRecordRequest(
        name=submitted.name, record=fix, reason="补充第17项", request_id=key()), haidian,
        lambda r: setattr(r, "reason", "另一原因"))  # fmt: skip
    assert corrected.version == 2
    fb = spb.SupervisorFeedback(
        dispatch=dispatch.name, supervisor=wang, entry_time=h.at(D(2026, 3, 10), 8), exit_time=h.at(D(2026, 3, 10), 17),
        badge_worn=spb.ANSWER_VALUE_YES, duties_performed=spb.ANSWER_VALUE_YES, integrity_kept=spb.ANSWER_VALUE_YES,
        signed_by="李主任",
    )  # fmt: skip
    idempotent_call(db, c.sv.SubmitFeedback, spb.SubmitFeedbackRequest(feedback=fb, request_id=key()), haidian,
                    lambda r: setattr(r.feedback, "signed_by", "王主任"))  # fmt: skip
    case = spb.PenaltyCase(subject_kind=spb.CASE_SUBJECT_KIND_INSTITUTION, subject=inst.name,
                           triggers=[spb.CASE_TRIGGER_FALSIFICATION], description="伪造考生签到表")  # fmt: skip
    idempotent_call(db, c.sv.OpenCase, spb.OpenCaseRequest(penalty_case=case, request_id=key()), city,
                    lambda r: setattr(r.penalty_case, "description", "另一事由"))  # fmt: skip

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        methods = sorted(r[0] for r in conn.execute("SELECT method FROM idempotency_key"))
    assert methods == sorted([
        "CreateInstitution", "RegisterSupervisor", "AppointSupervisor", "IssueBadge",
        "CreatePlan", "CreateDispatch", "SubmitRecord", "CorrectRecord", "SubmitFeedback", "OpenCase",
    ])  # fmt: skip


def test_a_request_id_that_is_not_a_uuid_is_refused_before_anything_runs(registry):
    c, db = registry
    before = row_counts(db)
    with pytest.raises(grpc.RpcError) as e:
        c.registry.IssueBadge(rpb.IssueBadgeRequest(appointment="appointments/1", request_id="retry-1"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and reason(e.value) == "REQUEST_ID_FORMAT"
    assert row_counts(db) == before
