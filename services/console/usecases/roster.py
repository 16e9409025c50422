"""Supervisors in scope (第九条–第十三条, 第十七条): appointment actions and badges, by the appointing agency."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bjsv.registry.v1 import registry_pb2 as rpb
from services.console.backend import Backend
from services.console.identity import Credentials
from services.console.usecases.forms import Form


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
        supervisor=sup.name, start_date=f.date("start_date", "聘期开始日期"), appointed_by=f.text("by", "办理人")
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
    return "IssueBadge", rpb.IssueBadgeRequest(appointment=sup.current_appointment)


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
