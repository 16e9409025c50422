"""Dispatch (委派, 第十四条 / 第二十条): who may dispatch, which sessions, the supervision window and the
team list. The legality of the team itself (size, scope, eligibility, recusal) is the rules service's
decision (CheckTeam); this module only checks the request's shape and derives the facts it needs."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from common.clock import SHANGHAI
from services.registry.domain.districts import CITY_CODE, DISTRICTS
from services.registry.domain.problems import Problem, ProblemsError
from services.registry.domain.workflow.model import DispatchScope, SessionWindow, SupervisionForm
from services.registry.domain.workflow.plans import SUPERVISOR_NAME

AGENCY = re.compile(r"^agencies/([0-9A]{1,2})$")
INSTITUTION = re.compile(r"^institutions/[0-9A-Za-z]{4,32}$")


def scope_of(dispatching_agency: str) -> DispatchScope:
    """第十四条: agencies dispatch external supervisors, institutions their internal ones."""
    m = AGENCY.match(dispatching_agency or "")
    if m and m[1] in DISTRICTS:
        return DispatchScope.EXTERNAL
    if INSTITUTION.match(dispatching_agency or ""):
        return DispatchScope.INTERNAL
    raise ProblemsError(
        [
            Problem(
                "dispatch.dispatching_agency",
                "DISPATCHING_AGENCY_INVALID",
                "委派单位应为市鉴定管理中心（agencies/A）、区鉴定管理机构（agencies/区县代码）"
                "或评价机构（institutions/机构编号）（第十四条）",
            )
        ]
    )


def agency_district(dispatching_agency: str) -> str | None:
    m = AGENCY.match(dispatching_agency or "")
    return m[1] if m else None


def is_city_centre(dispatching_agency: str) -> bool:
    return agency_district(dispatching_agency) == CITY_CODE


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime

    @property
    def end_day(self) -> dt.date:
        return self.end.astimezone(SHANGHAI).date()

    @property
    def start_day(self) -> dt.date:
        return self.start.astimezone(SHANGHAI).date()

    def days(self) -> list[dt.date]:
        d, out = self.start_day, []
        while d <= self.end_day:
            out.append(d)
            d += dt.timedelta(days=1)
        return out


def select_sessions(sessions: list[SessionWindow], session_ids: list[str]) -> list[SessionWindow]:
    """The supervised sessions: those named, or every session when none is named."""
    if not session_ids:
        return list(sessions)
    by_id = {s.session_id: s for s in sessions}
    unknown = [sid for sid in session_ids if sid not in by_id]
    if unknown:
        raise ProblemsError(
            [Problem("dispatch.session_ids", "SESSION_UNKNOWN", f"评价计划中没有场次：{'、'.join(unknown)}")]
        )
    if len(set(session_ids)) != len(session_ids):
        raise ProblemsError([Problem("dispatch.session_ids", "SESSION_DUPLICATE", "场次不能重复")])
    return [by_id[sid] for sid in session_ids]


def supervision_window(
    form: SupervisionForm, sessions: list[SessionWindow], *, start: dt.datetime | None, end: dt.datetime | None
) -> Window:
    """On-site: from the first supervised session's start to the last one's end (第二十一条).
    Records review: the review work's own start and end, after the activity has finished (第十九条
    事后认定资料督导 — 对已完成的评价活动)."""
    if form is SupervisionForm.ON_SITE:
        return Window(min(s.start for s in sessions), max(s.end for s in sessions))
    problems = []
    if start is None or end is None:
        problems.append(
            Problem(
                "dispatch.supervision_end_time",
                "REVIEW_TIME_REQUIRED",
                "事后认定资料督导须填写督导开始和结束时间（第十九条）",
            )
        )
    elif end < start:
        problems.append(
            Problem("dispatch.supervision_end_time", "REVIEW_END_BEFORE_START", "督导结束时间应晚于开始时间")
        )
    elif start < max(s.end for s in sessions):
        problems.append(
            Problem(
                "dispatch.supervision_start_time",
                "REVIEW_BEFORE_ACTIVITY_ENDED",
                "事后认定资料督导是对已完成的评价活动进行督导检查，开始时间应在所督导场次结束之后（第十九条）",
            )
        )
    if problems:
        raise ProblemsError(problems)
    return Window(start, end)  # type: ignore[arg-type]  # both present: a missing one raised above


def ended_sessions(sessions: list[SessionWindow], now: dt.datetime) -> list[SessionWindow]:
    """Sessions that have already ended at `now`. On-site supervision (现场督导, 第二十一条) checks an activity
    while it takes place, so it cannot be dispatched to these; a finished activity is supervised by records
    review (事后认定资料督导, 第十九条 / 第二十二条)."""
    return [s for s in sessions if s.end <= now]


def validate_team_list(supervisors: list[str], *, field: str = "supervisors") -> list[str]:
    """Shape only (names, duplicates); the rules service decides legality."""
    problems = []
    for i, s in enumerate(supervisors):
        if not SUPERVISOR_NAME.match(s or ""):
            problems.append(Problem(f"{field}[{i}]", "SUPERVISOR_NAME_INVALID", "督导员应写为 supervisors/编号"))
    if len(set(supervisors)) != len(supervisors):
        problems.append(Problem(field, "SUPERVISOR_DUPLICATE", "同一督导员不能重复委派"))
    if not supervisors:
        problems.append(Problem(field, "TEAM_REQUIRED", "请选择委派的督导员"))
    if problems:
        raise ProblemsError(problems)
    return list(supervisors)


def validate_replacement(active_members: list[str], leaving: str, joining: str, reason: str) -> None:
    problems = []
    if leaving not in active_members:
        problems.append(Problem("supervisor", "NOT_A_MEMBER", f"{leaving} 不是本次委派的在岗督导员"))
    if not SUPERVISOR_NAME.match(joining or ""):
        problems.append(Problem("replacement", "SUPERVISOR_NAME_INVALID", "督导员应写为 supervisors/编号"))
    elif joining in active_members:
        problems.append(Problem("replacement", "ALREADY_A_MEMBER", f"{joining} 已在本次委派的督导组中"))
    if not (reason or "").strip():
        problems.append(Problem("reason", "REASON_REQUIRED", "更换督导员须说明原因"))
    if problems:
        raise ProblemsError(problems)
