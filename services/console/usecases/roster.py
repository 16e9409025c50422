"""Supervisors in scope (第九条–第十三条, 第十七条): appointment actions and badges, by the appointing agency."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bjsv.registry.v1 import registry_pb2 as rpb
from services.console.backend import Backend
from services.console.identity import Credentials
from services.console.usecases.forms import Form
from services.console.usecases.shared import district_of, request_id

ATTESTATIONS = {  # 第九条 conditions, attested by the appointing agency
    rpb.ATTESTATION_ITEM_PARTY_LINE: "第九条（一）坚持党的基本路线，熟悉职业技能等级认定工作",
    rpb.ATTESTATION_ITEM_POLICY_KNOWLEDGE: "第九条（二）掌握有关政策、法规和规章，熟悉理论和技术方法",
    rpb.ATTESTATION_ITEM_INTEGRITY: "第九条（三）坚持原则，廉洁奉公、办事公道、作风正派",
    rpb.ATTESTATION_ITEM_ABILITY: "第九条（四）具有较强的组织协调能力和表达能力",
    rpb.ATTESTATION_ITEM_HEALTH: "第九条（五）身体健康，能胜任质量督导工作",
}


async def register(backend: Backend, creds: Credentials, form: Form, photo: bytes, photo_type: str) -> rpb.Supervisor:
    """An external supervisor of the user's district (city level for the city centre); the registry checks the
    ID number (GB 11643), the age limits (D6) and the photo."""
    district = district_of(creds.principal.org)
    by, on = form.text("attested_by", "核实单位"), form.date("attested_date", "核实日期")
    sup = rpb.Supervisor(
        full_name=form.text("full_name", "姓名", max_len=40),
        gender={"M": rpb.GENDER_MALE, "F": rpb.GENDER_FEMALE}.get(form.data.get("gender", ""), rpb.GENDER_UNSPECIFIED),
        birth_date=form.date("birth_date", "出生日期"),
        id_number=form.text("id_number", "居民身份证号", max_len=18),
        type=rpb.SUPERVISOR_TYPE_EXTERNAL,
        level=rpb.SUPERVISOR_LEVEL_DISTRICT if district else rpb.SUPERVISOR_LEVEL_CITY,
        district_code=district,
        phone=form.text("phone", "联系电话", max_len=20),
        photo=photo,
        photo_mime_type=photo_type,
        attestations=[
            rpb.Attestation(item=item, satisfied=bool(form.data.get(f"att_{item}")), attested_by=by, attested_date=on)
            for item in ATTESTATIONS
        ],
        training=rpb.TrainingAssessment(
            passed=bool(form.data.get("training_passed")),
            assessed_by=by,
            assessed_date=form.date("training_date", "培训考核日期"),
        ),
    )
    if not sup.gender:
        form.errors["gender"] = "请选择性别"
    if not photo:
        form.errors["photo"] = "请上传一寸免冠照片（JPEG 或 PNG）"
    form.check()
    req = rpb.RegisterSupervisorRequest(supervisor=sup, request_id=request_id(form, required=False))
    return (await backend.call(creds, backend.registry.RegisterSupervisor, req)).supervisor


@dataclass
class SupervisorPage:
    supervisor: rpb.Supervisor
    badges: list[rpb.Badge]


async def supervisor(backend: Backend, creds: Credentials, name: str) -> SupervisorPage:
    sup = (await backend.call(creds, backend.registry.GetSupervisor, rpb.GetSupervisorRequest(name=name))).supervisor
    badges = await backend.call(
        creds, backend.registry.ListBadges, rpb.ListBadgesRequest(supervisor=name, page_size=50)
    )
    return SupervisorPage(sup, list(badges.badges))


def _appoint(f: Form, sup: rpb.Supervisor) -> tuple[str, Any]:
    return "AppointSupervisor", rpb.AppointSupervisorRequest(
        supervisor=sup.name,
        start_date=f.date("start_date", "聘期开始日期"),
        appointed_by=f.text("by", "办理人"),
        request_id=request_id(f, required=False),
    )


def _renew(f: Form, sup: rpb.Supervisor) -> tuple[str, Any]:
    return "RenewAppointment", rpb.RenewAppointmentRequest(
        name=sup.current_appointment,
        start_date=f.date("start_date", "新聘期开始日期"),
        renewed_by=f.text("by", "办理人"),
    )


def _sanction(f: Form) -> dict[str, str]:
    """Suspension and revocation record why, under which article (第二十七条) and who decided."""
    return {
        "reason": f.text("reason", "原因", max_len=500),
        "article": f.text("article", "依据条款"),
        "decided_by": f.text("by", "办理人"),
        "case_reference": f.text("case_reference", "案件", required=False),
    }


def _suspend(f: Form, sup: rpb.Supervisor) -> tuple[str, Any]:
    return "SuspendAppointment", rpb.SuspendAppointmentRequest(name=sup.current_appointment, **_sanction(f))


def _reinstate(f: Form, sup: rpb.Supervisor) -> tuple[str, Any]:
    return "ReinstateAppointment", rpb.ReinstateAppointmentRequest(
        name=sup.current_appointment, reason=f.text("reason", "原因", max_len=500), decided_by=f.text("by", "办理人")
    )


def _revoke(f: Form, sup: rpb.Supervisor) -> tuple[str, Any]:
    return "RevokeAppointment", rpb.RevokeAppointmentRequest(name=sup.current_appointment, **_sanction(f))


def _issue_badge(f: Form, sup: rpb.Supervisor) -> tuple[str, Any]:
    return "IssueBadge", rpb.IssueBadgeRequest(
        appointment=sup.current_appointment, request_id=request_id(f, required=False)
    )


ACTIONS: dict[str, tuple[str, Callable[[Form, rpb.Supervisor], tuple[str, Any]]]] = {
    "appoint": ("聘任", _appoint),
    "renew": ("续聘", _renew),
    "suspend": ("暂停督导工作", _suspend),
    "reinstate": ("恢复", _reinstate),
    "revoke": ("解聘", _revoke),
    "issue-badge": ("发放证卡", _issue_badge),
}


async def act(backend: Backend, creds: Credentials, name: str, action: str, form: Form) -> str:
    """Runs one appointment action; returns what was done, in Chinese."""
    label, build = ACTIONS[action]
    sup = (await backend.call(creds, backend.registry.GetSupervisor, rpb.GetSupervisorRequest(name=name))).supervisor
    method, request = build(form, sup)
    form.check()
    call: Callable[..., Awaitable[Any]] = getattr(backend.registry, method)
    await backend.call(creds, call, request)
    return f"已{label}：{sup.full_name}"
