"""District agency and city centre: dashboard, plans, the double-random dispatch, cases, supervisors,
half-month reports and the rule set in force."""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import json
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, cast

from bjsv.documents.v1 import documents_pb2 as dpb
from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import supervision_pb2 as spb
from bjsv.rules.v1 import rules_pb2 as rupb
from services.console.backend import Backend
from services.console.identity import Credentials
from services.console.timefmt import local_input
from services.console.usecases.forms import Form
from services.console.usecases.shared import WorkflowDay, district_of, request_id

MODES = {
    "THEORY_EXAM": ("理论知识考试", spb.CERTIFICATION_MODE_THEORY_EXAM),
    "SKILL_OPERATION": ("技能操作考核", spb.CERTIFICATION_MODE_SKILL_OPERATION),
    "COMPREHENSIVE_REVIEW": ("综合评审", spb.CERTIFICATION_MODE_COMPREHENSIVE_REVIEW),
    "PROCESS_ASSESSMENT": ("过程化考核", spb.CERTIFICATION_MODE_PROCESS_ASSESSMENT),
    "PERFORMANCE_EVALUATION": ("业绩评价", spb.CERTIFICATION_MODE_PERFORMANCE_EVALUATION),
    "DIRECT_CERTIFICATION": ("直接认定", spb.CERTIFICATION_MODE_DIRECT_CERTIFICATION),
}
FORMS = {"ON_SITE": spb.SUPERVISION_FORM_ON_SITE, "RECORDS_REVIEW": spb.SUPERVISION_FORM_RECORDS_REVIEW}
SESSION_ROWS = 3  # sessions the plan form offers; more through the JSON API
RUNGS = {
    spb.PENALTY_RUNG_NO_ACTION: "不予处理",
    spb.PENALTY_RUNG_CRITICISM_AND_CORRECTION: "通报批评并责令改正",
    spb.PENALTY_RUNG_DISCIPLINARY_RECOMMENDATION: "向其主管部门提出给予处分的建议",
    spb.PENALTY_RUNG_QUALIFICATION_REVOKED: "取消其职业技能等级认定工作资格",
    spb.PENALTY_RUNG_SUPERVISOR_CRITICISM: "批评教育",
    spb.PENALTY_RUNG_SUPERVISOR_SUSPENSION: "暂停督导工作",
    spb.PENALTY_RUNG_SUPERVISOR_REVOCATION: "取消其外督员资格",
}


@dataclass
class Dashboard:
    today: str
    period: tuple[dt.date, dt.date]  # the current half-month reporting period (第二十四条, D10)
    dispatches: list[spb.Dispatch]
    overdue: list[spb.OverdueItem]
    open_cases: list[spb.PenaltyCase]


def half_month(today: dt.date, first_half_last_day: int) -> tuple[dt.date, dt.date]:
    """The 1st to `first_half_last_day`, or the day after to the month's last day (D10)."""
    if today.day <= first_half_last_day:
        return today.replace(day=1), today.replace(day=first_half_last_day)
    last = calendar.monthrange(today.year, today.month)[1]
    return today.replace(day=first_half_last_day + 1), today.replace(day=last)


def parameter(rule_set: rupb.RuleSet, name: str) -> Any:
    return next(json.loads(p.value_json) for p in rule_set.parameters if p.name == name)


async def dashboard(backend: Backend, creds: Credentials, day: WorkflowDay) -> Dashboard:
    """Overdue items and open cases, today's dispatches and the reporting period, in one round of calls: "today"
    is the workflow clock's (ListOverdue's as-of date); the calls that need it go out with the day last seen
    and are repeated only if ListOverdue names another day."""
    org = creds.principal.org
    sv = backend.supervision

    def dated(today: str) -> list[Awaitable[Any]]:
        todays = spb.ListDispatchesRequest(date=today, dispatching_agency=org)
        return [
            backend.call(creds, sv.ListDispatches, todays),
            backend.call(creds, backend.rules.GetRuleSet, rupb.GetRuleSetRequest(as_of_date=today)),
        ]

    guess = day.last
    overdue, cases, *on_day = await asyncio.gather(
        backend.call(creds, sv.ListOverdue, spb.ListOverdueRequest(dispatching_agency=org)),
        backend.call(creds, sv.ListCases, spb.ListCasesRequest(state=spb.CASE_STATE_OPEN, district=district_of(org))),
        *(dated(guess) if guess else []),
    )
    day.last = overdue.as_of_date
    if overdue.as_of_date != guess:
        on_day = await asyncio.gather(*dated(overdue.as_of_date))
    dispatches, rules = on_day
    today = dt.date.fromisoformat(overdue.as_of_date)
    period = half_month(today, int(parameter(rules.rule_set, "period.first_half_last_day")))
    return Dashboard(overdue.as_of_date, period, list(dispatches.dispatches), list(overdue.items), list(cases.cases))


async def plans(backend: Backend, creds: Credentials, page_token: str = "") -> spb.ListPlansResponse:
    req = spb.ListPlansRequest(district=district_of(creds.principal.org), page_size=20, page_token=page_token)
    return await backend.call(creds, backend.supervision.ListPlans, req)


def _people(form: Form, name: str, role: str) -> list[spb.SessionPerson]:
    """One person a line: `姓名,居民身份证号` (the ID number is how recusal, 第十六条, finds a supervisor)."""
    people = []
    for n, line in enumerate((form.data.get(name) or "").splitlines(), start=1):
        parts = [p.strip() for p in line.replace("，", ",").split(",")]
        if not parts[0]:
            continue
        if len(parts) != 2 or not parts[1]:
            form.errors[name] = f"第{n}行请按“姓名,居民身份证号”填写"
            continue
        people.append(spb.SessionPerson(display_name=parts[0], id_number=parts[1], role=role))
    return people


def plan_from_form(form: Form) -> spb.Plan:
    plan = spb.Plan(
        institution=form.text("institution", "被督导评价机构"),
        title=form.text("title", "评价计划名称"),
        occupation=form.text("occupation", "职业（工种）及等级"),
        district=form.text("district", "所在区"),
        candidate_count=form.integer("candidate_count", "认定人数", minimum=1),
        certification_modes=[mode for key, (_, mode) in MODES.items() if form.data.get(f"mode_{key}")],
    )
    if not plan.certification_modes:
        form.errors["certification_modes"] = "请至少选择一种认定形式"
    for i in range(SESSION_ROWS):
        if not (form.data.get(f"sessions[{i}].session_id") or "").strip() and i > 0:
            continue
        plan.sessions.append(
            spb.PlanSession(
                session_id=form.text(f"sessions[{i}].session_id", "场次编号", max_len=20),
                venue=form.text(f"sessions[{i}].venue", "考场"),
                start_time=form.instant(f"sessions[{i}].start_time", "开始时间"),
                end_time=form.instant(f"sessions[{i}].end_time", "结束时间"),
                examiners=_people(form, f"sessions[{i}].examiners", "考评员"),
                staff=_people(form, f"sessions[{i}].staff", "考务人员"),
            )
        )
    form.check()
    return plan


def plan_to_form(plan: spb.Plan) -> dict[str, str]:
    """A stored plan as the plan form's values (the edit page)."""
    values = {
        "institution": plan.institution, "title": plan.title, "occupation": plan.occupation,
        "district": plan.district, "candidate_count": str(plan.candidate_count), "etag": plan.etag,
        **{f"mode_{key}": "1" for key, (_, mode) in MODES.items() if mode in plan.certification_modes},
    }  # fmt: skip
    for i, session in enumerate(plan.sessions[:SESSION_ROWS]):
        people = {
            "examiners": "\n".join(f"{p.display_name},{p.id_number}" for p in session.examiners),
            "staff": "\n".join(f"{p.display_name},{p.id_number}" for p in session.staff),
            "session_id": session.session_id, "venue": session.venue,
            "start_time": local_input(session.start_time), "end_time": local_input(session.end_time),
        }  # fmt: skip
        values.update({f"sessions[{i}].{k}": v for k, v in people.items()})
    return values


async def create_plan(backend: Backend, creds: Credentials, form: Form) -> spb.Plan:
    plan = plan_from_form(form)
    req = spb.CreatePlanRequest(plan=plan, request_id=request_id(form))
    return (await backend.call(creds, backend.supervision.CreatePlan, req)).plan


async def update_plan(backend: Backend, creds: Credentials, name: str, form: Form) -> spb.Plan:
    plan = plan_from_form(form)
    plan.name, plan.etag = name, form.text("etag", "版本")
    return (await backend.call(creds, backend.supervision.UpdatePlan, spb.UpdatePlanRequest(plan=plan))).plan


async def plan_status(backend: Backend, creds: Credentials, name: str) -> spb.GetPlanStatusResponse:
    return await backend.call(creds, backend.supervision.GetPlanStatus, spb.GetPlanStatusRequest(plan=name))


def _dispatch_from_form(plan: str, form: Form, org: str) -> spb.Dispatch:
    d = spb.Dispatch(
        plan=plan, dispatching_agency=org, form=FORMS.get(form.data.get("form", ""), spb.SUPERVISION_FORM_UNSPECIFIED)
    )
    if not d.form:
        form.errors["form"] = "请选择督导形式"
    d.session_ids.extend(s for s in form.data.get("session_ids", "").split() if s)
    if d.form == spb.SUPERVISION_FORM_RECORDS_REVIEW:
        d.supervision_start_time.CopyFrom(form.instant("supervision_start_time", "督导开始时间"))
        d.supervision_end_time.CopyFrom(form.instant("supervision_end_time", "督导结束时间"))
    return d


async def propose(backend: Backend, creds: Credentials, plan: str, form: Form) -> spb.ProposeDispatchResponse:
    """The double-random draw (D15): the rules service draws from the pool of eligible supervisors with a
    recorded seed and checks the team; nothing is stored yet."""
    d = _dispatch_from_form(plan, form, creds.principal.org)
    team_size = form.integer("team_size", "督导组人数", minimum=0, maximum=20) if form.data.get("team_size") else 0
    form.check()
    req = spb.ProposeDispatchRequest(
        plan=plan, session_ids=d.session_ids, dispatching_agency=d.dispatching_agency, form=d.form,
        team_size=team_size, seed=form.data.get("seed", "").strip(),
        supervision_start_time=d.supervision_start_time, supervision_end_time=d.supervision_end_time,
    )  # fmt: skip
    return await backend.call(creds, backend.supervision.ProposeDispatch, req)


async def rule_texts(backend: Backend, creds: Credentials) -> dict[str, str]:
    """Rule id -> its message with the article, from the rule set in force: why a pool member was excluded."""
    texts = {}
    for r in (await rule_set(backend, creds)).rules:
        text = r.message or r.description or r.id
        texts[r.id] = f"{text}（{r.article}）" if r.article and r.article not in text else text
    return texts


async def dispatchable(backend: Backend, creds: Credentials) -> list[rpb.Supervisor]:
    """Supervisors in scope with an appointment running, for a manual choice of team."""
    req = rpb.ListSupervisorsRequest(district_code=district_of(creds.principal.org), page_size=500)
    listed = (await backend.call(creds, backend.registry.ListSupervisors, req)).supervisors
    return [s for s in listed if s.status == rpb.APPOINTMENT_STATUS_ACTIVE]


async def institutions(backend: Backend, creds: Credentials) -> list[rpb.Institution]:
    req = rpb.ListInstitutionsRequest(district_code=district_of(creds.principal.org), page_size=500)
    return list((await backend.call(creds, backend.registry.ListInstitutions, req)).institutions)


async def dispatch(backend: Backend, creds: Credentials, plan: str, form: Form) -> spb.Dispatch:
    """Dispatch the drawn team (same seed, so the service re-draws and compares) or a manual choice."""
    d = _dispatch_from_form(plan, form, creds.principal.org)
    manual = form.data.get("selection") == "MANUAL"
    req = spb.CreateDispatchRequest(
        dispatch=d,
        selection=spb.TEAM_SELECTION_MANUAL if manual else spb.TEAM_SELECTION_PROPOSED,
        supervisors=[s for s in form.data.get("supervisors", "").split() if s],
        seed=form.data.get("seed", "").strip(),
        team_size=int(form.data.get("team_size") or 0),
        request_id=request_id(form),
    )
    form.check()
    return (await backend.call(creds, backend.supervision.CreateDispatch, req)).dispatch


async def cases(backend: Backend, creds: Credentials, state: int = 0, page_token: str = "") -> spb.ListCasesResponse:
    req = spb.ListCasesRequest(district=district_of(creds.principal.org), state=cast(spb.CaseState, state),
                               page_size=20, page_token=page_token)  # fmt: skip
    return await backend.call(creds, backend.supervision.ListCases, req)


async def case(backend: Backend, creds: Credentials, name: str) -> spb.PenaltyCase:
    return (await backend.call(creds, backend.supervision.GetCase, spb.GetCaseRequest(name=name))).penalty_case


async def decide(backend: Backend, creds: Credentials, name: str, form: Form) -> spb.PenaltyCase:
    """Record an official's decision (D13); a correction order needs its deadline."""
    rung = int(form.data.get("rung") or 0)
    if rung not in RUNGS:
        form.errors["rung"] = "请选择处理决定"
    decision = spb.CaseDecision(
        rung=cast(spb.PenaltyRung, rung),  # one of RUNGS, or refused by form.check()
        official=form.text("official", "决定人（姓名及职务）"),
        official_org=creds.principal.org,
        note=form.text("note", "说明", required=False, max_len=2000),
        correction_deadline=form.date("correction_deadline", "整改期限", required=False),
    )
    form.check()
    req = spb.RecordCaseDecisionRequest(name=name, decision=decision)
    return (await backend.call(creds, backend.supervision.RecordCaseDecision, req)).penalty_case


async def supervisors(backend: Backend, creds: Credentials, page_token: str = "") -> rpb.ListSupervisorsResponse:
    req = rpb.ListSupervisorsRequest(district_code=district_of(creds.principal.org), page_size=50,
                                     page_token=page_token)  # fmt: skip
    return await backend.call(creds, backend.registry.ListSupervisors, req)


async def reports(backend: Backend, creds: Credentials) -> list[dpb.Document]:
    """Half-month district reports (第二十四条, D10) as rendered documents, newest first."""
    req = dpb.ListDocumentsRequest(kind=dpb.DOCUMENT_KIND_DISTRICT_REPORT, page_size=200)
    docs = (await backend.call(creds, backend.documents.ListDocuments, req)).documents
    district = district_of(creds.principal.org)
    mine = [d for d in docs if not district or d.subject.startswith(f"reports/{district}/")]
    return sorted(mine, key=lambda d: d.subject, reverse=True)


async def rule_set(backend: Backend, creds: Credentials) -> rupb.RuleSet:
    return (await backend.call(creds, backend.rules.GetRuleSet, rupb.GetRuleSetRequest())).rule_set


def new_request_id() -> str:
    """Idempotency key rendered into each form, so a resubmitted form does not create twice."""
    return uuid.uuid4().hex
