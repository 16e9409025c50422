"""群众举报 (第二十二条(九)): the city centre receives complaints about institutions and supervisors; the agency of
the subject's district investigates (调查、核实) and may open a case (第二十六条、第二十七条). Who sees which
complaint is the registry's decision (ListComplaints is scoped by district)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import supervision_pb2 as spb
from services.console.backend import Backend
from services.console.identity import Credentials
from services.console.usecases.forms import Form

SOURCES = ("来信", "来电", "来访", "网上举报", "其他")
STATES = {
    spb.COMPLAINT_STATE_RECEIVED: "已受理",
    spb.COMPLAINT_STATE_INVESTIGATING: "调查核实中",
    spb.COMPLAINT_STATE_CLOSED: "已办结",
}
SUBJECT_KINDS = {"institution": "评价机构", "supervisor": "外督员"}
PAGE_SIZE = 20


@dataclass
class Subjects:
    """Whom a complaint can be about: the institutions and the supervisors the official may see."""

    institutions: list[rpb.Institution]
    supervisors: list[rpb.Supervisor]


async def complaints(
    backend: Backend, creds: Credentials, query: str, state: int, district: str = "", page_token: str = ""
) -> spb.ListComplaintsResponse:
    """One page, newest first; a district agency gets its own district whatever it asks (the registry narrows)."""
    req = spb.ListComplaintsRequest(query=query[:100], state=cast(spb.ComplaintState, state), district=district,
                                    page_size=PAGE_SIZE, page_token=page_token)  # fmt: skip
    return await backend.call(creds, backend.supervision.ListComplaints, req)


async def complaint(backend: Backend, creds: Credentials, name: str) -> spb.Complaint:
    return (await backend.call(creds, backend.supervision.GetComplaint, spb.GetComplaintRequest(name=name))).complaint


async def subjects(backend: Backend, creds: Credentials) -> Subjects:
    insts = await backend.call(creds, backend.registry.ListInstitutions, rpb.ListInstitutionsRequest(page_size=500))
    sups = await backend.call(creds, backend.registry.ListSupervisors, rpb.ListSupervisorsRequest(page_size=500))
    return Subjects(list(insts.institutions), list(sups.supervisors))


def complaint_from_form(form: Form) -> spb.Complaint:
    """Source, subject (an institution or a supervisor, chosen by kind) and content, each refused beside its
    field when missing."""
    source = form.text("source", "举报来源", max_len=100)
    if source and source not in SOURCES:
        form.errors["source"] = "请选择举报来源"
    kind = form.data.get("subject_kind", "")
    subject = ""
    if kind not in SUBJECT_KINDS:
        form.errors["subject_kind"] = "请选择被举报对象类别（评价机构或外督员）"
    else:
        subject = form.text(f"subject_{kind}", "被举报" + SUBJECT_KINDS[kind], max_len=60)
    content = form.text("content", "举报内容", max_len=4000)
    form.check()
    return spb.Complaint(source=source, subject=subject, content=content)


async def receive(backend: Backend, creds: Credentials, form: Form) -> spb.Complaint:
    complaint_msg = complaint_from_form(form)
    token = form.text("client_request_id", "请求编号")
    form.check()
    req = spb.ReceiveComplaintRequest(complaint=complaint_msg, client_request_id=token)
    return (await backend.call(creds, backend.supervision.ReceiveComplaint, req)).complaint


async def handle(backend: Backend, creds: Credentials, name: str, form: Form) -> spb.Complaint:
    """调查、核实: the handling so far, the result (required to close) and the case it led to, if any."""
    close = form.data.get("close") == "1"
    req = spb.RecordComplaintHandlingRequest(
        name=name,
        handling=form.text("handling", "处理情况", required=not close, max_len=4000),
        result=form.text("result", "核实结果", required=close, max_len=4000),
        penalty_case=form.text("penalty_case", "立案案件", required=False, max_len=60),
        close=close,
    )
    if req.penalty_case and not req.penalty_case.startswith("cases/"):
        req.penalty_case = f"cases/{req.penalty_case}"
    form.check()
    return (await backend.call(creds, backend.supervision.RecordComplaintHandling, req)).complaint
