"""Certification plans (评价计划): validation of a plan and its sessions (场次), and derived facts used by
dispatch (supervision window, session days, examiner identities for the 第十六条 recusal check)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from common.clock import SHANGHAI
from services.registry.domain import id_number
from services.registry.domain.districts import is_district
from services.registry.domain.problems import Problem, ProblemsError
from services.registry.domain.workflow.model import CertificationMode, PlanIn, SessionPersonIn
from services.registry.domain.workflow.policy import DEFAULT_POLICY, WorkflowPolicy

INSTITUTION_NAME = re.compile(r"^institutions/[0-9A-Za-z]{4,32}$")
SUPERVISOR_NAME = re.compile(r"^supervisors/\d+$")
SESSION_ID = re.compile(r"^[0-9A-Za-z_.-]{1,32}$")


def person_key(id_no: str) -> str:
    """Person identifier sent to the rules service: SHA-256 of the normalised ID number (never the number)."""
    return hashlib.sha256(id_number.normalise(id_no).encode()).hexdigest()


def validate_plan(plan: PlanIn, *, policy: WorkflowPolicy = DEFAULT_POLICY) -> None:
    """Raise ProblemsError listing everything wrong with a plan (all problems at once)."""
    problems: list[Problem] = []
    if not INSTITUTION_NAME.match(plan.institution or ""):
        problems.append(Problem("plan.institution", "INSTITUTION_REQUIRED", "请填写评价机构（institutions/机构编号）"))
    if not plan.title.strip():
        problems.append(Problem("plan.title", "PLAN_TITLE_REQUIRED", "评价计划名称不能为空"))
    elif len(plan.title) > 200:
        problems.append(Problem("plan.title", "PLAN_TITLE_TOO_LONG", "评价计划名称不能超过200字"))
    if not plan.modes or any(m is None for m in plan.modes):
        problems.append(Problem("plan.certification_modes", "CERTIFICATION_MODE_REQUIRED", "请填写认定形式"))
    elif len(set(plan.modes)) != len(plan.modes):
        problems.append(Problem("plan.certification_modes", "CERTIFICATION_MODE_DUPLICATE", "认定形式不能重复"))
    elif CertificationMode.OTHER in plan.modes and not plan.other_mode_text.strip():
        problems.append(Problem("plan.other_mode_text", "OTHER_MODE_TEXT_REQUIRED", "认定形式为“其他”时请注明具体形式"))
    if not is_district(plan.district):
        problems.append(
            Problem(
                "plan.district", "DISTRICT_UNKNOWN", f"区县代码“{plan.district}”不在北京市行政区划代码表（附件1 表3）中"
            )
        )
    if plan.candidate_count < 1:
        problems.append(Problem("plan.candidate_count", "CANDIDATE_COUNT_INVALID", "认定人数应为正整数"))
    if not plan.sessions:
        problems.append(Problem("plan.sessions", "SESSIONS_REQUIRED", "评价计划至少应有一个场次"))
    elif len(plan.sessions) > policy.max_sessions:
        problems.append(Problem("plan.sessions", "TOO_MANY_SESSIONS", f"一个评价计划最多{policy.max_sessions}个场次"))
    seen: set[str] = set()
    for i, s in enumerate(plan.sessions):
        f = f"plan.sessions[{i}]"
        if not SESSION_ID.match(s.session_id or ""):
            problems.append(Problem(f"{f}.session_id", "SESSION_ID_INVALID", "场次编号应为1–32位字母、数字或 _ . -"))
        elif s.session_id in seen:
            problems.append(Problem(f"{f}.session_id", "SESSION_ID_DUPLICATE", f"场次编号“{s.session_id}”重复"))
        seen.add(s.session_id)
        if s.start is None or s.end is None:
            problems.append(Problem(f"{f}.start_time", "SESSION_TIME_REQUIRED", "请填写场次开始和结束时间"))
        elif s.end <= s.start:
            problems.append(Problem(f"{f}.end_time", "SESSION_END_BEFORE_START", "场次结束时间应晚于开始时间"))
        elif s.start.astimezone(SHANGHAI).date() != s.end.astimezone(SHANGHAI).date():
            problems.append(
                Problem(f"{f}.end_time", "SESSION_SPANS_DAYS", "一个场次应在同一天内开始和结束（北京时间）")
            )
        for kind, people in (("examiners", s.examiners), ("staff", s.staff)):
            for j, p in enumerate(people):
                problems.extend(_person_problems(p, f"{f}.{kind}[{j}]"))
        for j, sup in enumerate(s.internal_supervisors):
            if not SUPERVISOR_NAME.match(sup):
                problems.append(
                    Problem(
                        f"{f}.internal_supervisors[{j}]", "SUPERVISOR_NAME_INVALID", "内督员应写为 supervisors/编号"
                    )
                )
    if problems:
        raise ProblemsError(problems)


def _person_problems(p: SessionPersonIn, field: str) -> list[Problem]:
    out = []
    if not p.display_name.strip():
        out.append(Problem(f"{field}.display_name", "PERSON_NAME_REQUIRED", "人员姓名不能为空"))
    if p.supervisor and not SUPERVISOR_NAME.match(p.supervisor):
        out.append(Problem(f"{field}.supervisor", "SUPERVISOR_NAME_INVALID", "督导员应写为 supervisors/编号"))
    if not p.id_number and not p.supervisor:
        out.append(
            Problem(
                f"{field}.id_number",
                "PERSON_ID_REQUIRED",
                "考评人员和工作人员须填写居民身份证号，以便执行回避制度（第十六条）",
            )
        )
    if p.id_number:
        try:
            id_number.parse(p.id_number, field=f"{field}.id_number")
        except ProblemsError as e:
            out.extend(e.problems)
    return out


def session_day(start: dt.datetime) -> dt.date:
    return start.astimezone(SHANGHAI).date()
