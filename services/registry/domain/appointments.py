"""The appointment state machine: 聘任 (第十条), 聘期 and 续聘 (第十三条), 聘期届满自动解聘 (第十三条),
暂停督导工作 and 取消资格 (第二十七条).

    not_appointed ──appoint──▶ active ──suspend──▶ suspended ──reinstate──▶ active (or expired)
                                 │ ▲                   │
                        expire   │ └──renew── expired ◀┘ expire
                                 ▼                     any but revoked ──revoke──▶ revoked (final)

Pure Python: a use case loads the state, asks this module for the transition (or gets the refusal with its
rule id and article) and persists what it answers. Invalid inputs raise `ProblemsError`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import terms
from .problems import Problem, ProblemsError, Refused
from .supervisors import Status

STATUS_ZH = {
    Status.ACTIVE: "在聘",
    Status.EXPIRED: "聘期届满",
    Status.SUSPENDED: "暂停督导工作",
    Status.REVOKED: "取消资格",
    Status.NOT_APPOINTED: "未聘任",
}


@dataclass(frozen=True)
class AppointmentState:
    """What the machine needs to know about an appointment."""

    name: str  # "appointments/7": the subject of refusals
    status: Status
    term_number: int
    term_start: dt.date
    term_end: dt.date


@dataclass(frozen=True)
class Change:
    """A status transition to record in the appointment's history.

    `decision`: a decision by an official (暂停/恢复/取消资格) whose reason and article the appointment shows
    as its current status reason; renewals and the expiry sweep only leave a history row."""

    from_status: Status
    to_status: Status
    reason: str = ""
    article: str = ""
    decision: bool = False


def require_reason(reason: str, article: str | None = None) -> None:
    """A decision of 第二十七条 states its reason and, for 暂停/取消资格, the article it applies."""
    problems = []
    if not (reason or "").strip():
        problems.append(Problem("reason", "REASON_REQUIRED", "须填写原因（第二十七条）"))
    if article is not None and not article.strip():
        problems.append(Problem("article", "REASON_REQUIRED", "须注明依据条款，如“第二十七条”"))
    if problems:
        raise ProblemsError(problems)


def check_start(
    start: dt.date, today: dt.date, *, term_years: int, max_future_days: int, number: int = 1
) -> terms.Term:
    """The term that starts on `start` (第十三条: `term_years` from the rule set); it must not be over already,
    nor start more than `max_future_days` ahead."""
    term = terms.term_from(start, term_years, number)
    if term.end < today:
        raise ProblemsError(
            [
                Problem(
                    "start_date",
                    "TERM_ALREADY_ENDED",
                    f"聘期{start.isoformat()}至{term.end.isoformat()}已届满，不能据此聘任（第十三条）",
                )
            ]
        )
    if start > today + dt.timedelta(days=max_future_days):
        raise ProblemsError([Problem("start_date", "START_TOO_FAR", f"聘期开始日期不得晚于今天起{max_future_days}天")])
    return term


def check_can_appoint(supervisor: str, status: Status) -> None:
    """A supervisor holds one appointment at a time (第十三条) and a revoked one is never appointed again
    (第二十七条)."""
    if status in (Status.ACTIVE, Status.SUSPENDED):
        raise Refused("ALREADY_APPOINTED", "registry.appointment.single-active", supervisor,
                      "该质量督导员已在聘期内，不得重复聘任；聘期届满后可续聘（第十三条）")  # fmt: skip
    if status == Status.REVOKED:
        raise Refused("QUALIFICATION_REVOKED", "registry.appointment.revoked", supervisor,
                      "该质量督导员已被取消资格，不得再聘任（第二十七条）")  # fmt: skip


def appoint(
    supervisor: str, status: Status, *, start: dt.date, today: dt.date, term_years: int, max_future_days: int
) -> terms.Term:
    """聘任 (第十条): the first term (not_appointed or expired → active)."""
    check_can_appoint(supervisor, status)
    return check_start(start, today, term_years=term_years, max_future_days=max_future_days)


def check_can_renew(state: AppointmentState) -> None:
    if state.status == Status.SUSPENDED:
        raise Refused("APPOINTMENT_SUSPENDED", "registry.renewal.not-suspended", state.name,
                      "暂停督导工作期间不得续聘（第二十七条）")  # fmt: skip
    if state.status == Status.REVOKED:
        raise Refused("QUALIFICATION_REVOKED", "registry.renewal.not-revoked", state.name,
                      "已被取消资格，不得续聘（第二十七条）")  # fmt: skip


def renew(
    state: AppointmentState, *, start: dt.date, today: dt.date, term_years: int, max_future_days: int
) -> tuple[terms.Term, Change | None]:
    """可续聘 (第十三条): a new term from `start`, later than the current one's start; an active appointment
    may be renewed early (the new term becomes current), an expired one becomes active again."""
    check_can_renew(state)
    if start <= state.term_start:
        raise ProblemsError(
            [
                Problem(
                    "start_date",
                    "RENEWAL_START",
                    f"续聘的新聘期开始日期应晚于当前聘期开始日期{state.term_start.isoformat()}（第十三条）",
                )
            ]
        )
    term = check_start(
        start, today, term_years=term_years, max_future_days=max_future_days, number=state.term_number + 1
    )
    change = None if state.status == Status.ACTIVE else Change(state.status, Status.ACTIVE, reason="续聘")
    return term, change


def suspend(state: AppointmentState, *, reason: str, article: str) -> Change:
    """暂停督导工作 (第二十七条): only an active appointment."""
    require_reason(reason, article)
    if state.status != Status.ACTIVE:
        raise Refused("NOT_ACTIVE", "registry.suspend.active-only", state.name,
                      f"只有在聘状态可暂停督导工作，当前状态为{STATUS_ZH[state.status]}（第二十七条）")  # fmt: skip
    return Change(state.status, Status.SUSPENDED, reason, article, decision=True)


def reinstate(state: AppointmentState, *, reason: str, today: dt.date) -> Change:
    """恢复督导工作 after a suspension: active again, or expired if the term ended meanwhile (第十三条)."""
    require_reason(reason)
    if state.status != Status.SUSPENDED:
        raise Refused("NOT_SUSPENDED", "registry.reinstate.suspended-only", state.name,
                      f"只有暂停督导工作的质量督导员可恢复，当前状态为{STATUS_ZH[state.status]}")  # fmt: skip
    to = Status.EXPIRED if terms.is_expired(state.term_end, today) else Status.ACTIVE
    return Change(state.status, to, reason, decision=True)


def revoke(state: AppointmentState, *, reason: str, article: str) -> Change:
    """取消资格 (第二十七条): from any state but revoked; final. (Its badges are revoked with it, D2.)"""
    require_reason(reason, article)
    if state.status == Status.REVOKED:
        raise Refused("ALREADY_REVOKED", "registry.revoke.once", state.name, "已取消资格（第二十七条）")
    return Change(state.status, Status.REVOKED, reason, article, decision=True)


def expire(state: AppointmentState, *, as_of: dt.date) -> Change | None:
    """聘期届满自动解聘 (第十三条): an active or suspended appointment whose last day is before `as_of`;
    None when it is not due."""
    if state.status not in (Status.ACTIVE, Status.SUSPENDED) or not terms.is_expired(state.term_end, as_of):
        return None
    return Change(state.status, Status.EXPIRED, "聘期届满自动解聘", "第十三条")
