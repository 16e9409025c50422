"""gRPC servicer `bjsv.registry.v1.SupervisionService`: the supervision workflow inside the registry process
(issue #7 — 第十四条, 第十九条–第二十七条).

The registry is the system of record; the rules service decides (CheckTeam, ProposeTeam, EvaluatePenalty);
documents and notify react to the events written here through the outbox in the same transaction as the
change (supervision_events.proto). Thin edge: proto <-> domain conversion, fact assembly for the rules
service, and one write transaction per state change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import Field
from sqlalchemy.orm import Session

from bjsv.registry.v1 import supervision_events_pb2 as ev
from bjsv.registry.v1 import supervision_pb2 as pb
from bjsv.registry.v1 import supervision_pb2_grpc
from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from common.clients import channel, invoke
from common.clock import SHANGHAI, Clock
from common.context import current_caller
from common.db import Database
from common.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionViolation,
)
from common.events import record_event
from common.policy import PolicyParameters
from common.server import Service, Servicer
from common.workdays import CalendarFileError, CalendarNotCovered, WorkdayCalendar, default_calendar
from services.registry.config import RegistrySettings
from services.registry.domain import id_number
from services.registry.domain.districts import CITY_CENTRE_NAME, CITY_CODE, is_district
from services.registry.domain.policy import DEFAULT_POLICY as DEFAULT_REGISTRY_POLICY
from services.registry.domain.policy import RegistryPolicy
from services.registry.domain.problems import ProblemsError
from services.registry.domain.workflow import cases as case_rules
from services.registry.domain.workflow import checklists, deadlines, periods, plans, records, reports
from services.registry.domain.workflow import dispatch as dispatch_rules
from services.registry.domain.workflow import feedback as feedback_rules
from services.registry.domain.workflow.model import (
    Answer,
    CaseOrigin,
    CaseState,
    CaseSubjectKind,
    CaseTrigger,
    CertificationMode,
    DispatchScope,
    ItemAnswer,
    PenaltyRung,
    Period,
    PlanIn,
    PlanSessionIn,
    SessionPersonIn,
    SessionWindow,
    SupervisionForm,
    certification_mode_text,
)
from services.registry.domain.workflow.policy import DEFAULT_POLICY, WorkflowPolicy
from services.registry.storage import workflow_models as wm
from services.registry.storage import workflow_repository as repo

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVICE_NAME = "bjsv.registry.v1.SupervisionService"

# Event types (envelope `type`, subject bjsv.registry.<type>).
PLAN_CREATED = "plan.created"
PLAN_UPDATED = "plan.updated"
DISPATCH_CREATED = "dispatch.created"
DISPATCH_CANCELLED = "dispatch.cancelled"
DISPATCH_MEMBER_REPLACED = "dispatch.member_replaced"
RECORD_SUBMITTED = "record.submitted"
RECORD_CORRECTED = "record.corrected"
FEEDBACK_SUBMITTED = "feedback.submitted"
CASE_OPENED = "case.opened"
CASE_DECIDED = "case.decided"
CASE_ESCALATED = "case.escalated"
CASE_CORRECTED = "case.corrected"
IMMEDIATE_REPORT_RAISED = "immediate_report.raised"
PERIOD_CLOSED = "period.closed"
ALL_TYPES = (
    PLAN_CREATED, PLAN_UPDATED, DISPATCH_CREATED, DISPATCH_CANCELLED, DISPATCH_MEMBER_REPLACED, RECORD_SUBMITTED,
    RECORD_CORRECTED, FEEDBACK_SUBMITTED, CASE_OPENED, CASE_DECIDED, CASE_ESCALATED, CASE_CORRECTED,
    IMMEDIATE_REPORT_RAISED, PERIOD_CLOSED,
)  # fmt: skip


class SupervisionSettings(RegistrySettings):
    """Workflow knobs (environment variables BJSV_SUPERVISION_*)."""

    supervision_sweep_interval: float = Field(
        default=300.0, description="seconds between deadline sweeps (correction orders, period close); 0 disables"
    )
    supervision_test_clock: bool = Field(
        default=False, description="allow SetSupervisionClock (tests and dry runs only; never in production)"
    )
    supervision_rules_timeout: float = Field(default=10.0, description="deadline of calls to the rules service (s)")
    supervision_recent_window_days: int = Field(
        default=90, description="window for recent_dispatch_count sent to ProposeTeam (fairness of the draw)"
    )
    supervision_first_half_last_day: int = Field(
        default=15, description="D10: last day of the first half-month reporting period"
    )

    def workflow_policy(self) -> WorkflowPolicy:
        return WorkflowPolicy(first_half_last_day=self.supervision_first_half_last_day)


class WorkflowClock(Clock):
    """The workflow's clock: real Asia/Shanghai time, or fixed by an operator when the test clock is enabled."""

    def __init__(self, base: Clock | None = None) -> None:
        self._base = base or Clock()
        self._fixed: dt.datetime | None = None

    def now(self) -> dt.datetime:
        return self._fixed if self._fixed is not None else self._base.now()

    def fix(self, at: dt.datetime | None) -> None:
        self._fixed = at.astimezone(SHANGHAI) if at is not None else None

    @property
    def mode(self) -> str:
        return "fixed" if self._fixed is not None else "real"


# -- enum maps --------------------------------------------------------------------------------------------

FORM = {
    SupervisionForm.ON_SITE: pb.SUPERVISION_FORM_ON_SITE,
    SupervisionForm.RECORDS_REVIEW: pb.SUPERVISION_FORM_RECORDS_REVIEW,
}
FORM_IN = {v: k for k, v in FORM.items()}
MODE = {
    CertificationMode.THEORY_EXAM: pb.CERTIFICATION_MODE_THEORY_EXAM,
    CertificationMode.SKILL_OPERATION: pb.CERTIFICATION_MODE_SKILL_OPERATION,
    CertificationMode.COMPREHENSIVE_REVIEW: pb.CERTIFICATION_MODE_COMPREHENSIVE_REVIEW,
    CertificationMode.PROCESS_ASSESSMENT: pb.CERTIFICATION_MODE_PROCESS_ASSESSMENT,
    CertificationMode.PERFORMANCE_EVALUATION: pb.CERTIFICATION_MODE_PERFORMANCE_EVALUATION,
    CertificationMode.DIRECT_CERTIFICATION: pb.CERTIFICATION_MODE_DIRECT_CERTIFICATION,
    CertificationMode.OTHER: pb.CERTIFICATION_MODE_OTHER,
}
MODE_IN = {v: k for k, v in MODE.items()}
ANSWER = {Answer.YES: pb.ANSWER_VALUE_YES, Answer.NO: pb.ANSWER_VALUE_NO}
ANSWER_IN = {v: k for k, v in ANSWER.items()}
SCOPE = {DispatchScope.EXTERNAL: pb.DISPATCH_SCOPE_EXTERNAL, DispatchScope.INTERNAL: pb.DISPATCH_SCOPE_INTERNAL}
SELECTION = {"proposed": pb.TEAM_SELECTION_PROPOSED, "manual": pb.TEAM_SELECTION_MANUAL}
DSTATE = {"active": pb.DISPATCH_STATE_ACTIVE, "cancelled": pb.DISPATCH_STATE_CANCELLED}
MSTATE = {"active": pb.MEMBER_STATE_ACTIVE, "replaced": pb.MEMBER_STATE_REPLACED}
SUBJECT_KIND = {
    CaseSubjectKind.INSTITUTION: pb.CASE_SUBJECT_KIND_INSTITUTION,
    CaseSubjectKind.SUPERVISOR: pb.CASE_SUBJECT_KIND_SUPERVISOR,
}
SUBJECT_KIND_IN = {v: k for k, v in SUBJECT_KIND.items()}
TRIGGER = {
    CaseTrigger.REFUSED_INFORMATION: pb.CASE_TRIGGER_REFUSED_INFORMATION,
    CaseTrigger.OBSTRUCTED_REPORTING: pb.CASE_TRIGGER_OBSTRUCTED_REPORTING,
    CaseTrigger.REFUSED_IMPROVEMENT: pb.CASE_TRIGGER_REFUSED_IMPROVEMENT,
    CaseTrigger.FALSIFICATION: pb.CASE_TRIGGER_FALSIFICATION,
    CaseTrigger.RETALIATION: pb.CASE_TRIGGER_RETALIATION,
    CaseTrigger.OTHER_INTERFERENCE: pb.CASE_TRIGGER_OTHER_INTERFERENCE,
    CaseTrigger.SUPERVISOR_DUTY_FAILURE: pb.CASE_TRIGGER_SUPERVISOR_DUTY_FAILURE,
    CaseTrigger.SUPERVISOR_PRIVATE_GAIN: pb.CASE_TRIGGER_SUPERVISOR_PRIVATE_GAIN,
}
TRIGGER_IN = {v: k for k, v in TRIGGER.items()}
RULES_TRIGGER = {
    CaseTrigger.REFUSED_INFORMATION: rules_pb2.PENALTY_TRIGGER_ART26_REFUSE_INFORMATION,
    CaseTrigger.OBSTRUCTED_REPORTING: rules_pb2.PENALTY_TRIGGER_ART26_OBSTRUCT_REPORTING,
    CaseTrigger.REFUSED_IMPROVEMENT: rules_pb2.PENALTY_TRIGGER_ART26_REFUSE_IMPROVEMENT,
    CaseTrigger.FALSIFICATION: rules_pb2.PENALTY_TRIGGER_ART26_FALSIFICATION,
    CaseTrigger.RETALIATION: rules_pb2.PENALTY_TRIGGER_ART26_RETALIATION,
    CaseTrigger.OTHER_INTERFERENCE: rules_pb2.PENALTY_TRIGGER_ART26_OTHER,
    CaseTrigger.SUPERVISOR_DUTY_FAILURE: rules_pb2.PENALTY_TRIGGER_ART27_NEGLECT_OF_DUTY,
    CaseTrigger.SUPERVISOR_PRIVATE_GAIN: rules_pb2.PENALTY_TRIGGER_ART27_PRIVATE_GAIN,
}
ORIGIN = {
    CaseOrigin.RECORD_FINDING: pb.CASE_ORIGIN_RECORD_FINDING,
    CaseOrigin.FEEDBACK: pb.CASE_ORIGIN_FEEDBACK,
    CaseOrigin.MANUAL: pb.CASE_ORIGIN_MANUAL,
}
RUNG = {
    PenaltyRung.NO_ACTION: pb.PENALTY_RUNG_NO_ACTION,
    PenaltyRung.CRITICISM_AND_CORRECTION: pb.PENALTY_RUNG_CRITICISM_AND_CORRECTION,
    PenaltyRung.DISCIPLINARY_RECOMMENDATION: pb.PENALTY_RUNG_DISCIPLINARY_RECOMMENDATION,
    PenaltyRung.QUALIFICATION_REVOKED: pb.PENALTY_RUNG_QUALIFICATION_REVOKED,
    PenaltyRung.SUPERVISOR_CRITICISM: pb.PENALTY_RUNG_SUPERVISOR_CRITICISM,
    PenaltyRung.SUPERVISOR_SUSPENSION: pb.PENALTY_RUNG_SUPERVISOR_SUSPENSION,
    PenaltyRung.SUPERVISOR_REVOCATION: pb.PENALTY_RUNG_SUPERVISOR_REVOCATION,
}
RUNG_IN = {v: k for k, v in RUNG.items()}
SANCTION_TO_RUNG = {
    rules_pb2.SANCTION_ART26_CRITICISE_AND_ORDER_CORRECTION: PenaltyRung.CRITICISM_AND_CORRECTION,
    rules_pb2.SANCTION_ART26_DISCIPLINE_RECOMMENDATION: PenaltyRung.DISCIPLINARY_RECOMMENDATION,
    rules_pb2.SANCTION_ART26_DISQUALIFICATION: PenaltyRung.QUALIFICATION_REVOKED,
    rules_pb2.SANCTION_ART27_CRITICISM_EDUCATION: PenaltyRung.SUPERVISOR_CRITICISM,
    rules_pb2.SANCTION_ART27_SUSPENSION: PenaltyRung.SUPERVISOR_SUSPENSION,
    rules_pb2.SANCTION_ART27_REVOCATION: PenaltyRung.SUPERVISOR_REVOCATION,
}
RUNG_TO_SANCTION = {v: k for k, v in SANCTION_TO_RUNG.items()}
CASE_STATE = {
    CaseState.OPEN: pb.CASE_STATE_OPEN,
    CaseState.AWAITING_CORRECTION: pb.CASE_STATE_AWAITING_CORRECTION,
    CaseState.ESCALATED: pb.CASE_STATE_ESCALATED,
    CaseState.CLOSED: pb.CASE_STATE_CLOSED,
}
CASE_STATE_IN = {v: k for k, v in CASE_STATE.items()}
RULES_STATUS = {
    "active": rules_pb2.SUPERVISOR_STATUS_ACTIVE,
    "expired": rules_pb2.SUPERVISOR_STATUS_EXPIRED,
    "suspended": rules_pb2.SUPERVISOR_STATUS_SUSPENDED,
    "revoked": rules_pb2.SUPERVISOR_STATUS_REVOKED,
}
RULES_ATTESTATION = {
    "art9_1": rules_pb2.ATTESTATION_ITEM_PARTY_LINE,
    "art9_2": rules_pb2.ATTESTATION_ITEM_POLICY_KNOWLEDGE,
    "art9_3": rules_pb2.ATTESTATION_ITEM_INTEGRITY,
    "art9_4": rules_pb2.ATTESTATION_ITEM_ABILITY,
    "health": rules_pb2.ATTESTATION_ITEM_HEALTH,
}
SEVERITY = {
    rules_pb2.SEVERITY_BLOCKING: pb.FINDING_SEVERITY_BLOCKING,
    rules_pb2.SEVERITY_ADVISORY: pb.FINDING_SEVERITY_ADVISORY,
}
# 外督员 on Annex 4 only: feedback is on external supervisors (第二十三条).
EXTERNAL = "external"


# -- small helpers ---------------------------------------------------------------------------------------


def _ts(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC))
    return ts


def _dt(msg: Any, field: str) -> dt.datetime | None:
    if not msg.HasField(field):
        return None
    return getattr(msg, field).ToDatetime(tzinfo=SHANGHAI)


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes (stored as UTC); PostgreSQL returns aware ones."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _iso(d: dt.date | None) -> str:
    return d.isoformat() if d else ""


def _parse_date(text: str, field: str, *, required: bool = True) -> dt.date | None:
    if not text:
        if required:
            raise InvalidArgument("DATE_REQUIRED", [FieldViolation(field, "请填写日期（YYYY-MM-DD）")])
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument("DATE_INVALID", [FieldViolation(field, f"日期“{text}”格式应为 YYYY-MM-DD")]) from None


def _id(name: str, collection: str, field: str = "name") -> int:
    prefix = f"{collection}/"
    tail = name[len(prefix) :] if name.startswith(prefix) else ""
    if not tail.isdigit():
        raise InvalidArgument("NAME_INVALID", [FieldViolation(field, f"应写为 {collection}/编号")])
    return int(tail)


def _page(token: str, size: int) -> tuple[int, int]:
    offset = int(token) if token.isdigit() else 0
    return offset, min(max(size or 50, 1), 500)


def _problems(e: ProblemsError) -> InvalidArgument:
    return InvalidArgument(e.reason, [FieldViolation(p.field, p.description) for p in e.problems])


def _calendar_error(e: CalendarNotCovered, subject: str) -> FailedPrecondition:
    return FailedPrecondition(
        e.reason,
        [PreconditionViolation("bjsv.deadline.workday-calendar", subject, f"{e.message_zh}（第二十三条，D5）")],
        metadata={"year": str(e.year)},
    )


def _caller_org() -> str:
    return current_caller().org


def _require_role(roles: tuple[str, ...], what: str) -> None:
    role = current_caller().role
    if role not in roles:
        raise PermissionDenied(
            "ROLE_NOT_AUTHORISED", f"{what}须由{'、'.join(ROLE_LABELS.get(r, r) for r in roles)}办理"
        )


ROLE_LABELS = {"city-centre": "市鉴定管理中心", "district-agency": "区鉴定管理机构", "operator": "运维人员"}


# -- proto <-> domain ------------------------------------------------------------------------------------


def _person_in(p: pb.SessionPerson) -> SessionPersonIn:
    return SessionPersonIn(p.display_name.strip(), id_number.normalise(p.id_number), p.supervisor, p.role.strip())


def plan_in(p: pb.Plan) -> PlanIn:
    return PlanIn(
        institution=p.institution,
        title=p.title.strip(),
        modes=[MODE_IN.get(m) for m in p.certification_modes],
        other_mode_text=p.other_mode_text.strip(),
        district=p.district.strip(),
        candidate_count=p.candidate_count,
        occupation=p.occupation.strip(),
        sessions=[
            PlanSessionIn(
                s.session_id.strip(),
                _dt(s, "start_time"),
                _dt(s, "end_time"),
                s.venue.strip(),
                [_person_in(x) for x in s.examiners],
                [_person_in(x) for x in s.staff],
                list(s.internal_supervisors),
            )
            for s in p.sessions
        ],
    )


def _windows(plan_row: wm.CertPlan) -> list[SessionWindow]:
    return [
        SessionWindow(s["session_id"], dt.datetime.fromisoformat(s["start"]), dt.datetime.fromisoformat(s["end"]))
        for s in plan_row.sessions
    ]


def _unmask_people(data: PlanIn, stored: wm.CertPlan) -> None:
    """A read-modify-write client sends back the masked ID numbers it was shown: keep the stored number for
    the same person (session, list, name, masked form); anything else masked is left to fail validation."""
    known: dict[tuple[str, str, str, str], str] = {}
    for s in stored.sessions:
        for kind in ("examiners", "staff"):
            for x in s[kind]:
                if x["id_number"]:
                    known[(s["session_id"], kind, x["display_name"], id_number.mask(x["id_number"]))] = x["id_number"]
    for s in data.sessions:
        for kind, people in (("examiners", s.examiners), ("staff", s.staff)):
            for x in people:
                if "*" in x.id_number:
                    x.id_number = known.get((s.session_id, kind, x.display_name, x.id_number), x.id_number)


def plan_pb(row: wm.CertPlan) -> pb.Plan:
    modes = [CertificationMode(m) for m in row.modes]
    out = pb.Plan(
        name=f"plans/{row.id}",
        institution=row.institution,
        institution_name=row.institution_name,
        title=row.title,
        certification_modes=[MODE[m] for m in modes],
        other_mode_text=row.other_mode_text,
        certification_mode_text=certification_mode_text(modes, row.other_mode_text),
        district=row.district,
        candidate_count=row.candidate_count,
        occupation=row.occupation,
        etag=str(row.version),
        create_time=_ts(_aware(row.created_at)),
        update_time=_ts(_aware(row.updated_at)),
    )
    for s in row.sessions:

        def person(x: dict[str, str]) -> pb.SessionPerson:
            return pb.SessionPerson(
                display_name=x["display_name"],
                id_number=id_number.mask(x["id_number"]) if x["id_number"] else "",
                supervisor=x["supervisor"],
                role=x["role"],
            )

        out.sessions.append(
            pb.PlanSession(
                session_id=s["session_id"],
                start_time=_ts(dt.datetime.fromisoformat(s["start"])),
                end_time=_ts(dt.datetime.fromisoformat(s["end"])),
                venue=s["venue"],
                examiners=[person(x) for x in s["examiners"]],
                staff=[person(x) for x in s["staff"]],
                internal_supervisors=s["internal_supervisors"],
            )
        )
    return out


def dispatch_pb(d: wm.Dispatch, members: list[wm.DispatchMember], plan_row: wm.CertPlan) -> pb.Dispatch:
    by_id = {m.supervisor_id: m for m in members}
    out = pb.Dispatch(
        name=f"dispatches/{d.id}",
        plan=f"plans/{d.plan_id}",
        session_ids=d.session_ids,
        dispatching_agency=d.dispatching_agency,
        scope=SCOPE[DispatchScope(d.scope)],
        form=FORM[SupervisionForm(d.form)],
        selection=SELECTION[d.selection],
        seed=d.seed,
        rule_set_version=d.rule_set_version,
        supervision_start_time=_ts(_aware(d.window_start)),
        supervision_end_time=_ts(_aware(d.window_end)),
        record_due_date=_iso(d.record_due),
        feedback_due_date=_iso(d.feedback_due),
        state=DSTATE[d.state],
        cancel_reason=d.cancel_reason,
        create_time=_ts(_aware(d.created_at)),
        plan_title=plan_row.title,
        institution=plan_row.institution,
        institution_name=plan_row.institution_name,
        district=d.district,
        rule_decisions=d.decisions,
    )
    for f in d.advisory_findings:
        out.advisory_findings.append(
            pb.TeamFinding(
                rule_id=f["rule_id"],
                severity=pb.FINDING_SEVERITY_ADVISORY,
                message=f["message"],
                article=f["article"],
                subject=f["subject"],
            )
        )
    for m in members:
        repl = by_id.get(m.replaced_by) if m.replaced_by else None
        out.members.append(
            pb.DispatchMember(
                supervisor=f"supervisors/{m.supervisor_id}",
                display_name=m.display_name,
                badge_code=m.badge_code,
                state=MSTATE[m.state],
                replaced_by=f"supervisors/{repl.supervisor_id}"
                if repl
                else (f"supervisors/{m.replaced_by}" if m.replaced_by else ""),
                replace_reason=m.replace_reason,
                add_time=_ts(_aware(m.added_at)),
            )
        )
    return out


def record_pb(
    rec: wm.SupervisionRecord, ver: wm.SupervisionRecordVersion, d: wm.Dispatch, plan_row: wm.CertPlan
) -> pb.SupervisionRecord:
    form = SupervisionForm(rec.form)
    modes = [CertificationMode(m) for m in plan_row.modes]
    return pb.SupervisionRecord(
        name=f"records/{rec.id}",
        version=ver.version,
        dispatch=f"dispatches/{d.id}",
        plan=f"plans/{plan_row.id}",
        form=FORM[form],
        submitted_by=f"supervisors/{ver.submitted_by}",
        institution=plan_row.institution,
        institution_name=plan_row.institution_name,
        plan_title=plan_row.title,
        certification_mode_text=certification_mode_text(modes, plan_row.other_mode_text),
        district=rec.district,
        answers=[
            pb.ChecklistAnswer(
                item_number=a["item_number"],
                answer=ANSWER[Answer(a["answer"])],
                remark=a["remark"],
                item_text=checklists.item_text(form, a["item_number"]),
            )
            for a in ver.answers
        ],
        problems=ver.problems,
        supervisor_signatures=ver.signatures,
        institution_head_signature=ver.head_signature,
        sign_date=_iso(ver.sign_date),
        findings=[
            pb.RecordFinding(
                item_number=f["item_number"],
                item_text=f["item_text"],
                remark=f["remark"],
                opened_case=f.get("opened_case", ""),
            )
            for f in ver.findings
        ],
        submit_time=_ts(_aware(ver.submitted_at)),
        due_date=_iso(ver.due_date),
        late=ver.late_calendar_days > 0,
        late_working_days=ver.late_working_days,
        late_calendar_days=ver.late_calendar_days,
        correction_reason=ver.correction_reason,
        client_request_id=ver.client_request_id,
        supervision_start_time=_ts(_aware(d.window_start)),
        supervision_end_time=_ts(_aware(d.window_end)),
        dispatching_agency=d.dispatching_agency,
    )


def feedback_pb(f: wm.SupervisorFeedback, d: wm.Dispatch, plan_row: wm.CertPlan) -> pb.SupervisorFeedback:
    return pb.SupervisorFeedback(
        name=f"feedback/{f.id}",
        dispatch=f"dispatches/{d.id}",
        supervisor=f"supervisors/{f.supervisor_id}",
        supervisor_name=f.supervisor_name,
        institution=plan_row.institution,
        institution_name=plan_row.institution_name,
        entry_time=_ts(_aware(f.entry_time)),
        exit_time=_ts(_aware(f.exit_time)),
        badge_worn=ANSWER[Answer(f.badge_worn)],
        duties_performed=ANSWER[Answer(f.duties_performed)],
        integrity_kept=ANSWER[Answer(f.integrity_kept)],
        comments=f.comments,
        signed_by=f.signed_by,
        submit_time=_ts(_aware(f.submitted_at)),
        due_date=_iso(f.due_date),
        late=f.late_calendar_days > 0,
        late_working_days=f.late_working_days,
        late_calendar_days=f.late_calendar_days,
        review_case=f"cases/{f.review_case_id}" if f.review_case_id else "",
        client_request_id=f.client_request_id,
        plan_title=plan_row.title,
        supervisor_badge_code=f.badge_code,
        district=f.district,
        dispatching_agency=d.dispatching_agency,
    )


def recommendation_pb(r: dict[str, Any]) -> pb.CaseRecommendation:
    out = pb.CaseRecommendation(
        rung=RUNG[PenaltyRung(r["rung"])],
        article=r["article"],
        sanction_text=r["sanction_text"],
        explanation=r["explanation"],
        serious=r["serious"],
        rule_ids=r["rule_ids"],
        rule_set_version=r["rule_set_version"],
        rule_decisions=r.get("decisions", []),
    )
    if r.get("evaluate_time"):
        out.evaluate_time.CopyFrom(_ts(dt.datetime.fromisoformat(r["evaluate_time"])))
    return out


def decision_pb(d: wm.CaseDecision) -> pb.CaseDecision:
    rung = PenaltyRung(d.rung)
    return pb.CaseDecision(
        rung=RUNG[rung],
        official=d.official,
        official_org=d.official_org,
        decide_time=_ts(_aware(d.decided_at)),
        note=d.note,
        correction_deadline=_iso(d.correction_deadline),
        sanction_text=rung.text,
    )


def case_pb(c: wm.PenaltyCase, decisions: list[wm.CaseDecision]) -> pb.PenaltyCase:
    return pb.PenaltyCase(
        name=f"cases/{c.id}",
        subject_kind=SUBJECT_KIND[CaseSubjectKind(c.subject_kind)],
        subject=c.subject,
        subject_name=c.subject_name,
        district=c.district,
        triggers=[TRIGGER[CaseTrigger(t)] for t in c.triggers],
        origin=ORIGIN[CaseOrigin(c.origin)],
        source=c.source,
        item_numbers=c.item_numbers,
        description=c.description,
        state=CASE_STATE[CaseState(c.state)],
        recommendation=recommendation_pb(c.recommendation),
        decisions=[decision_pb(d) for d in decisions],
        correction_deadline=_iso(c.correction_deadline),
        correct_time=_ts(_aware(c.corrected_at)) if c.corrected_at else None,
        correction_note=c.correction_note,
        escalation_count=c.escalation_count,
        open_time=_ts(_aware(c.opened_at)),
        opened_by=c.opened_by,
        plan=f"plans/{c.plan_id}" if c.plan_id else "",
        dispatch=f"dispatches/{c.dispatch_id}" if c.dispatch_id else "",
        immediate_report_raised=c.immediate_report_raised,
    )


def report_pb(r: wm.DistrictReport, city_centre: str) -> pb.DistrictReport:
    f = r.figures
    return pb.DistrictReport(
        name=f"reports/{r.district}/{r.period_key}",
        district=r.district,
        district_name=f["district_name"],
        period_start=f["period_start"],
        period_end=f["period_end"],
        supervisions_by_form=[
            pb.FormCount(form=FORM[SupervisionForm(k)], count=v) for k, v in f["supervisions_by_form"].items()
        ],
        no_counts=[
            pb.ItemNoCount(form=FORM[SupervisionForm(form)], item_number=n, item_text=text, count=count)
            for form, n, text, count in f["no_counts"]
        ],
        late_records=f["late_records"],
        late_feedback=f["late_feedback"],
        cases_opened=f["cases_opened"],
        cases_decided=f["cases_decided"],
        dispatches_created=f["dispatches_created"],
        records=f["records"],
        cases=f["cases"],
        close_time=_ts(_aware(r.closed_at)),
        recipient=city_centre,
        feedback_count=f["feedback_count"],
    )


def _draw_session(session_facts: list[rules_pb2.SessionFacts]) -> rules_pb2.SessionFacts:
    """The one session ProposeTeam draws for, standing for every session the dispatch covers.

    CheckTeam checks the team against each covered session, so the draw must exclude anyone who is an examiner
    (or candidate) in ANY of them (第十六条 不能兼任同场次考评工作), not only in the first: the first session's
    name and date, with the examiners and candidates of all covered sessions (in session order, deduplicated)."""
    first = session_facts[0]
    return rules_pb2.SessionFacts(
        name=first.name,
        date=first.date,
        examiner_person_ids=list(dict.fromkeys(p for sf in session_facts for p in sf.examiner_person_ids)),
        candidate_person_ids=list(dict.fromkeys(p for sf in session_facts for p in sf.candidate_person_ids)),
    )


# -- recipients ------------------------------------------------------------------------------------------


def _agency_recipient(session: Session, org: str, role: str) -> ev.Recipient:
    if org.startswith("agencies/"):
        code = org.split("/", 1)[1]
        names = repo.agency_names(session)
        return ev.Recipient(
            party=org, display_name=names.get(code, CITY_CENTRE_NAME if code == CITY_CODE else ""), role=role
        )
    inst = repo.institution(session, org)
    return ev.Recipient(party=org, display_name=inst.display_name if inst else "", role=role)


def _city_and_district(session: Session, district: str) -> list[ev.Recipient]:
    out = [_agency_recipient(session, f"agencies/{CITY_CODE}", "city_centre")]
    if district and district != CITY_CODE:
        out.append(_agency_recipient(session, f"agencies/{district}", "district_agency"))
    return out


def _dispatch_recipients(
    session: Session, d: wm.Dispatch, members: list[wm.DispatchMember], plan_row: wm.CertPlan
) -> list[ev.Recipient]:
    out = [
        ev.Recipient(party=f"supervisors/{m.supervisor_id}", display_name=m.display_name, role="supervisor")
        for m in members
        if m.state == "active"
    ]
    out.append(ev.Recipient(party=plan_row.institution, display_name=plan_row.institution_name, role="institution"))
    out.append(_agency_recipient(session, d.dispatching_agency, "dispatching_agency"))
    return out


# -- the servicer ----------------------------------------------------------------------------------------


class SupervisionApi(supervision_pb2_grpc.SupervisionServiceServicer):
    def __init__(
        self,
        settings: SupervisionSettings,
        database: Database,
        *,
        clock: WorkflowClock | None = None,
        policy: WorkflowPolicy = DEFAULT_POLICY,
        calendar: WorkdayCalendar | None = None,
        rules: rules_pb2_grpc.RulesServiceStub | None = None,
        parameters: PolicyParameters | None = None,
        registry_policy: RegistryPolicy = DEFAULT_REGISTRY_POLICY,
    ) -> None:
        self.settings = settings
        self.db = database
        self.clock = clock or WorkflowClock()
        self.policy = policy
        self._calendar = calendar
        self._rules = rules
        self._parameters = parameters
        self.registry_policy = registry_policy
        self._sweep_lock = asyncio.Lock()

    # -- dependencies --

    def calendar(self) -> WorkdayCalendar:
        if self._calendar is not None:
            return self._calendar
        try:
            return default_calendar()
        except CalendarFileError as e:
            raise FailedPrecondition(
                "CALENDAR_FILE_INVALID",
                [
                    PreconditionViolation(
                        "bjsv.deadline.workday-calendar", "calendar", f"运维配置的工作日历文件有误：{e}"
                    )
                ],
            ) from None

    def rules(self) -> rules_pb2_grpc.RulesServiceStub:
        if self._rules is None:
            self._rules = rules_pb2_grpc.RulesServiceStub(channel(self.settings.target("rules")))
        return self._rules

    def parameters(self) -> PolicyParameters:
        if self._parameters is None:
            self._parameters = PolicyParameters(self.settings.target("rules"),
                                                timeout=self.settings.supervision_rules_timeout)  # fmt: skip
        return self._parameters

    async def _rules_call(self, call: Callable[..., Awaitable[T]], request: Any) -> T:
        return await invoke(call(request, timeout=self.settings.supervision_rules_timeout), dependency="rules")

    def today(self) -> dt.date:
        return self.clock.today()

    # ---------------------------------------------------------------------------------------------- plans

    async def CreatePlan(self, request: pb.CreatePlanRequest, context) -> pb.CreatePlanResponse:
        crid = request.client_request_id.strip() or None
        if crid:
            existing = await self.db.read(repo.plan_by_request, crid)
            if existing is not None:
                return pb.CreatePlanResponse(plan=plan_pb(existing))
        data = plan_in(request.plan)
        try:
            plans.validate_plan(data, policy=self.policy)
        except ProblemsError as e:
            raise _problems(e) from None
        inst = await self.db.read(repo.institution, data.institution)
        if inst is None:
            raise NotFound(data.institution)
        now, actor = self.clock.now(), _caller_org()

        def tx(session: Session) -> wm.CertPlan:
            if crid and (again := repo.plan_by_request(session, crid)) is not None:
                return again
            row = repo.insert_plan(session, data, institution=inst, client_request_id=crid, actor=actor, now=now)
            record_event(
                session, type=PLAN_CREATED, subject=f"plans/{row.id}", payload=ev.PlanCreated(plan=plan_pb(row))
            )
            return row

        return pb.CreatePlanResponse(plan=plan_pb(await self.db.write(tx)))

    async def UpdatePlan(self, request: pb.UpdatePlanRequest, context) -> pb.UpdatePlanResponse:
        plan_id = _id(request.plan.name, "plans", "plan.name")
        data = plan_in(request.plan)
        current = await self.db.read(repo.plan, plan_id)
        if current is None:
            raise NotFound(request.plan.name)
        data.institution = current.institution  # the institution of a plan never changes
        _unmask_people(data, current)
        try:
            plans.validate_plan(data, policy=self.policy)
        except ProblemsError as e:
            raise _problems(e) from None
        now = self.clock.now()

        def tx(session: Session) -> wm.CertPlan:
            row = repo.plan(session, plan_id, for_update=True)
            if row is None:
                raise NotFound(request.plan.name)
            if request.plan.etag and request.plan.etag != str(row.version):
                raise FailedPrecondition(
                    "ETAG_MISMATCH",
                    [
                        PreconditionViolation(
                            "bjsv.plan.etag", request.plan.name, "评价计划已被他人修改，请重新读取后再提交"
                        )
                    ],
                )
            repo.update_plan(session, row, data, now=now)
            record_event(
                session, type=PLAN_UPDATED, subject=f"plans/{row.id}", payload=ev.PlanUpdated(plan=plan_pb(row))
            )
            return row

        return pb.UpdatePlanResponse(plan=plan_pb(await self.db.write(tx)))

    async def GetPlan(self, request: pb.GetPlanRequest, context) -> pb.GetPlanResponse:
        row = await self.db.read(repo.plan, _id(request.name, "plans"))
        if row is None:
            raise NotFound(request.name)
        return pb.GetPlanResponse(plan=plan_pb(row))

    async def ListPlans(self, request: pb.ListPlansRequest, context) -> pb.ListPlansResponse:
        offset, limit = _page(request.page_token, request.page_size)
        rows, total = await self.db.read(
            repo.list_plans, institution=request.institution, district=request.district, offset=offset, limit=limit
        )
        nxt = str(offset + limit) if offset + limit < total else ""
        return pb.ListPlansResponse(plans=[plan_pb(r) for r in rows], next_page_token=nxt, total_size=total)

    # ---------------------------------------------------------------------------------------------- dispatch

    async def _dispatch_context(
        self,
        plan_name: str,
        session_ids: list[str],
        agency: str,
        form_pb: int,
        start: dt.datetime | None,
        end: dt.datetime | None,
        *,
        new_dispatch: bool = True,
    ) -> dict[str, Any]:
        """The plan, form, scope, supervised sessions and window of a dispatch. A new on-site dispatch must not
        cover a session that has ended (第二十一条); changes to an existing dispatch (`new_dispatch=False`, e.g.
        replacing a member before its remaining sessions) are not refused for that."""
        plan_row = await self.db.read(repo.plan, _id(plan_name, "plans", "dispatch.plan"))
        if plan_row is None:
            raise NotFound(plan_name)
        form = FORM_IN.get(form_pb)
        if form is None:
            raise InvalidArgument(
                "FORM_REQUIRED",
                [FieldViolation("dispatch.form", "请选择督导形式：现场督导或事后认定资料督导（第十九条）")],
            )
        try:
            scope = dispatch_rules.scope_of(agency)
            selected = dispatch_rules.select_sessions(_windows(plan_row), list(session_ids))
            window = dispatch_rules.supervision_window(form, selected, start=start, end=end)
        except ProblemsError as e:
            raise _problems(e) from None
        ended = dispatch_rules.ended_sessions(selected, self.clock.now()) if new_dispatch else []
        if form is SupervisionForm.ON_SITE and ended:
            raise FailedPrecondition(
                "ON_SITE_SESSION_ENDED",
                [
                    PreconditionViolation(
                        "bj-2022.dispatch.on-site-not-ended",
                        f"plans/{plan_row.id}/sessions/{s.session_id}",
                        f"场次{s.session_id}已于{s.end.astimezone(SHANGHAI):%Y-%m-%d %H:%M}结束，现场督导须在评价活动"
                        "进行时实施（第二十一条）；已完成的评价活动请委派事后认定资料督导（第二十二条）",
                    )
                    for s in ended
                ],
            )
        if form is SupervisionForm.ON_SITE:
            days = [s.start.astimezone(SHANGHAI).date() for s in selected]
        else:
            days = [window.start_day for _ in selected]
        return {"plan": plan_row, "form": form, "scope": scope, "sessions": selected, "window": window, "days": days}

    async def _facts(
        self, plan_row: wm.CertPlan, sessions: list[SessionWindow], days: list[dt.date], team_ids: list[int]
    ) -> tuple[rules_pb2.PlanFacts, list[rules_pb2.SessionFacts], dict[int, repo.SupervisorView]]:
        raw = {s["session_id"]: s for s in plan_row.sessions}
        examiner_sups = sorted(
            {
                _id(x["supervisor"], "supervisors")
                for s in sessions
                for x in raw[s.session_id]["examiners"]
                if x["supervisor"]
            }
        )
        views = await self.db.read(repo.supervisors, sorted(set(team_ids) | set(examiner_sups)))
        plan_facts = rules_pb2.PlanFacts(
            name=f"plans/{plan_row.id}",
            institution=plan_row.institution,
            district_code=plan_row.district,
            candidate_count=plan_row.candidate_count,
            start_date=_iso(plan_row.first_day),
            end_date=_iso(plan_row.last_day),
        )
        session_facts = []
        for s, day in zip(sessions, days, strict=True):
            ids = []
            for x in raw[s.session_id]["examiners"]:
                if x["id_number"]:
                    ids.append(plans.person_key(x["id_number"]))
                elif x["supervisor"] and (v := views.get(_id(x["supervisor"], "supervisors"))):
                    ids.append(plans.person_key(v.id_number))
            session_facts.append(
                rules_pb2.SessionFacts(
                    name=f"plans/{plan_row.id}/sessions/{s.session_id}", date=day.isoformat(), examiner_person_ids=ids
                )
            )
        return plan_facts, session_facts, views

    @staticmethod
    def _supervisor_facts(v: repo.SupervisorView, recent: int = 0) -> rules_pb2.SupervisorFacts:
        return rules_pb2.SupervisorFacts(
            name=v.name,
            person_id=plans.person_key(v.id_number),
            gender=rules_pb2.GENDER_MALE if v.male else rules_pb2.GENDER_FEMALE,
            birth_date=v.birth_date.isoformat(),
            kind=rules_pb2.SUPERVISOR_KIND_EXTERNAL if v.type == EXTERNAL else rules_pb2.SUPERVISOR_KIND_INTERNAL,
            level={"city": rules_pb2.SUPERVISOR_LEVEL_CITY, "district": rules_pb2.SUPERVISOR_LEVEL_DISTRICT}.get(
                v.level, rules_pb2.SUPERVISOR_LEVEL_UNSPECIFIED
            ),
            district_code=v.district_code,
            institution=v.institution,
            status=RULES_STATUS.get(v.status, rules_pb2.SUPERVISOR_STATUS_UNSPECIFIED),
            term_start_date=_iso(v.term_start),
            term_end_date=_iso(v.term_end),
            training_passed=v.training_passed,
            training_passed_date=_iso(v.training_date),
            attestations=[
                rules_pb2.Attestation(item=RULES_ATTESTATION[item], attested_by=by, attested_date=_iso(day))
                for item, by, day in v.attestations
                if item in RULES_ATTESTATION
            ],
            recent_dispatch_count=recent,
        )

    async def _check_team(self, ctx: dict[str, Any], agency: str, team_ids: list[int], subject: str) -> dict[str, Any]:
        plan_facts, session_facts, views = await self._facts(ctx["plan"], ctx["sessions"], ctx["days"], team_ids)
        missing = [i for i in team_ids if i not in views]
        if missing:
            raise NotFound(f"supervisors/{missing[0]}")
        members = [self._supervisor_facts(views[i]) for i in team_ids]
        reqs = [
            rules_pb2.CheckTeamRequest(
                dispatching_agency=agency, plan=plan_facts, session=sf, supervisors=members, as_of_date=sf.date
            )
            for sf in session_facts
        ]
        resp = await self._rules_call(self.rules().BatchCheckTeam, rules_pb2.BatchCheckTeamRequest(requests=reqs))
        seen: set[tuple[str, str, str]] = set()
        blocking: list[dict[str, str]] = []
        advisory: list[dict[str, str]] = []
        version, recommended, names = "", 0, []
        for r in resp.responses:
            version = r.decision.ruleset_version
            recommended = max(recommended, r.recommended_team_size)
            names.append(r.decision.name)
            for f in r.decision.findings:
                key = (f.rule_id, f.subject, f.message)
                if key in seen:
                    continue
                seen.add(key)
                item = {"rule_id": f.rule_id, "message": f.message, "article": f.article, "subject": f.subject}
                (blocking if f.severity == rules_pb2.SEVERITY_BLOCKING else advisory).append(item)
        if blocking:
            raise FailedPrecondition(
                "TEAM_CHECK_FAILED",
                [PreconditionViolation(f["rule_id"], f["subject"] or subject, f["message"]) for f in blocking],
            )
        return {
            "advisory": advisory,
            "version": version,
            "recommended": recommended,
            "decisions": names,
            "views": views,
        }

    async def _propose(
        self, ctx: dict[str, Any], agency: str, team_size: int, seed: str
    ) -> rules_pb2.ProposeTeamResponse:
        scope: DispatchScope = ctx["scope"]
        district = dispatch_rules.agency_district(agency)
        if scope is DispatchScope.INTERNAL:
            filters = {
                "type": "internal",
                "level": None,
                "district_code": None,
                "institution_number": agency.split("/", 1)[1],
            }
        elif district == CITY_CODE:
            filters = {"type": EXTERNAL, "level": "city", "district_code": None, "institution_number": None}
        else:
            filters = {"type": EXTERNAL, "level": "district", "district_code": district, "institution_number": None}
        ids = await self.db.read(repo.pool_ids, **filters)
        plan_facts, session_facts, views = await self._facts(ctx["plan"], ctx["sessions"], ctx["days"], ids)
        since = self.today() - dt.timedelta(days=self.settings.supervision_recent_window_days)
        recent = await self.db.read(repo.recent_dispatch_counts, ids, since)
        drawn_for = _draw_session(session_facts)
        req = rules_pb2.ProposeTeamRequest(
            dispatching_agency=agency,
            plan=plan_facts,
            session=drawn_for,
            pool=[self._supervisor_facts(views[i], recent.get(i, 0)) for i in ids if i in views],
            as_of_date=drawn_for.date,
            also_on_dates=sorted({sf.date for sf in session_facts} - {drawn_for.date}),  # legal on every covered day
            team_size=team_size,
            seed=seed,
        )
        return await self._rules_call(self.rules().ProposeTeam, req)

    async def _due_dates(self, end_day: dt.date, subject: str) -> tuple[dt.date, dt.date]:
        workdays = await self.parameters().get("record.deadline_workdays", end_day)  # D5, from the rule set
        try:
            due = deadlines.due_date(end_day, workdays=workdays, calendar=self.calendar())
        except CalendarNotCovered as e:
            raise _calendar_error(e, subject) from None
        return due, due  # Annex 3 and Annex 4 share 第二十三条's deadline (D5)

    async def ProposeDispatch(self, request: pb.ProposeDispatchRequest, context) -> pb.ProposeDispatchResponse:
        ctx = await self._dispatch_context(
            request.plan,
            list(request.session_ids),
            request.dispatching_agency,
            request.form,
            _dt(request, "supervision_start_time"),
            _dt(request, "supervision_end_time"),
        )
        proposal = await self._propose(ctx, request.dispatching_agency, request.team_size, request.seed)
        team = [_id(n, "supervisors") for n in proposal.team]
        out = pb.ProposeDispatchResponse(
            supervisors=list(proposal.team), seed=proposal.seed, rule_set_version=proposal.decision.ruleset_version
        )
        try:
            checked = await self._check_team(ctx, request.dispatching_agency, team, request.plan)
        except FailedPrecondition as e:  # a proposal reports its blocking findings instead of failing
            out.findings.extend(
                pb.TeamFinding(
                    rule_id=v.type, severity=pb.FINDING_SEVERITY_BLOCKING, message=v.description, subject=v.subject
                )
                for v in e.violations
            )
            return out
        out.recommended_team_size = checked["recommended"]
        out.findings.extend(
            pb.TeamFinding(
                rule_id=f["rule_id"],
                severity=pb.FINDING_SEVERITY_ADVISORY,
                message=f["message"],
                article=f["article"],
                subject=f["subject"],
            )
            for f in checked["advisory"]
        )
        return out

    async def CreateDispatch(self, request: pb.CreateDispatchRequest, context) -> pb.CreateDispatchResponse:
        crid = request.client_request_id.strip() or None
        if crid and (done := await self.db.read(self._dispatch_by_request, crid)) is not None:
            return pb.CreateDispatchResponse(dispatch=done)
        d = request.dispatch
        ctx = await self._dispatch_context(
            d.plan,
            list(d.session_ids),
            d.dispatching_agency,
            d.form,
            _dt(d, "supervision_start_time"),
            _dt(d, "supervision_end_time"),
        )
        seed = ""
        if request.selection == pb.TEAM_SELECTION_PROPOSED:
            if not request.seed:
                raise InvalidArgument(
                    "SEED_REQUIRED",
                    [FieldViolation("seed", "随机抽取的委派须提供抽取种子（ProposeDispatch 返回的 seed）")],
                )
            proposal = await self._propose(ctx, d.dispatching_agency, request.team_size, request.seed)
            team_names = list(proposal.team)
            if request.supervisors and sorted(request.supervisors) != sorted(team_names):
                raise FailedPrecondition(
                    "POOL_CHANGED",
                    [
                        PreconditionViolation(
                            "bjsv.dispatch.draw",
                            d.plan,
                            "以该种子重新抽取的督导组与提交的名单不一致（督导员库已变化），请重新抽取",
                        )
                    ],
                )
            seed, selection = proposal.seed, "proposed"
        elif request.selection == pb.TEAM_SELECTION_MANUAL:
            team_names, selection = list(request.supervisors), "manual"
        else:
            raise InvalidArgument("SELECTION_REQUIRED", [FieldViolation("selection", "请选择随机抽取或指定名单")])
        try:
            dispatch_rules.validate_team_list(team_names)
        except ProblemsError as e:
            raise _problems(e) from None
        team = [_id(n, "supervisors", "supervisors") for n in team_names]
        checked = await self._check_team(ctx, d.dispatching_agency, team, d.plan)
        window = ctx["window"]
        record_due, feedback_due = await self._due_dates(window.end_day, d.plan)
        now, actor, plan_row, views = self.clock.now(), _caller_org(), ctx["plan"], checked["views"]

        def tx(session: Session) -> pb.Dispatch:
            if crid and (again := repo.dispatch_by_request(session, crid)) is not None:
                return self._dispatch_proto(session, again)
            row, members = repo.insert_dispatch(
                session,
                plan_row,
                session_ids=[s.session_id for s in ctx["sessions"]] if d.session_ids else [],
                dispatching_agency=d.dispatching_agency,
                scope=ctx["scope"].value,
                form=ctx["form"].value,
                selection=selection,
                seed=seed,
                advisory_findings=checked["advisory"],
                rule_set_version=checked["version"],
                decisions=checked["decisions"],
                window=window,
                record_due=record_due,
                feedback_due=feedback_due,
                team=[views[sid] for sid in team],
                client_request_id=crid,
                actor=actor,
                now=now,
            )
            proto = dispatch_pb(row, members, plan_row)
            record_event(
                session,
                type=DISPATCH_CREATED,
                subject=proto.name,
                payload=ev.DispatchCreated(
                    dispatch=proto,
                    plan=plan_pb(plan_row),
                    record_due_date=_iso(record_due),
                    feedback_due_date=_iso(feedback_due),
                    recipients=_dispatch_recipients(session, row, members, plan_row),
                ),
            )
            return proto

        try:
            proto = await self.db.write(tx)
        except sa.exc.IntegrityError:
            if crid and (done := await self.db.read(self._dispatch_by_request, crid)) is not None:
                return pb.CreateDispatchResponse(dispatch=done)
            raise
        return pb.CreateDispatchResponse(dispatch=proto)

    @staticmethod
    def _dispatch_proto(session: Session, row: wm.Dispatch) -> pb.Dispatch:
        return dispatch_pb(row, repo.members(session, [row.id])[row.id], repo.plan(session, row.plan_id))

    def _dispatch_by_request(self, session: Session, crid: str) -> pb.Dispatch | None:
        row = repo.dispatch_by_request(session, crid)
        return self._dispatch_proto(session, row) if row else None

    async def CancelDispatch(self, request: pb.CancelDispatchRequest, context) -> pb.CancelDispatchResponse:
        dispatch_id = _id(request.name, "dispatches")
        if not request.reason.strip():
            raise InvalidArgument("REASON_REQUIRED", [FieldViolation("reason", "取消委派须说明原因")])
        now = self.clock.now()

        def tx(session: Session) -> pb.Dispatch:
            row = repo.dispatch(session, dispatch_id, for_update=True)
            if row is None:
                raise NotFound(request.name)
            if row.state == "cancelled":
                return self._dispatch_proto(session, row)
            if repo.record_of_dispatch(session, dispatch_id) is not None:
                raise FailedPrecondition(
                    "DISPATCH_HAS_RECORD",
                    [PreconditionViolation("bjsv.dispatch.state", request.name, "督导记录表已提交，不能取消本次委派")],
                )
            repo.cancel_dispatch(session, row, reason=request.reason.strip(), now=now)
            members = repo.members(session, [row.id])[row.id]
            plan_row = repo.plan(session, row.plan_id)
            proto = dispatch_pb(row, members, plan_row)
            record_event(
                session,
                type=DISPATCH_CANCELLED,
                subject=proto.name,
                payload=ev.DispatchCancelled(
                    dispatch=proto, recipients=_dispatch_recipients(session, row, members, plan_row)
                ),
            )
            return proto

        return pb.CancelDispatchResponse(dispatch=await self.db.write(tx))

    async def ReplaceDispatchMember(
        self, request: pb.ReplaceDispatchMemberRequest, context
    ) -> pb.ReplaceDispatchMemberResponse:
        dispatch_id = _id(request.name, "dispatches")
        row = await self.db.read(repo.dispatch, dispatch_id)
        if row is None:
            raise NotFound(request.name)
        if row.state != "active":
            raise FailedPrecondition(
                "DISPATCH_CANCELLED", [PreconditionViolation("bjsv.dispatch.state", request.name, "本次委派已取消")]
            )
        members = (await self.db.read(repo.members, [dispatch_id]))[dispatch_id]
        active = [f"supervisors/{m.supervisor_id}" for m in members if m.state == "active"]
        try:
            dispatch_rules.validate_replacement(active, request.supervisor, request.replacement, request.reason)
        except ProblemsError as e:
            raise _problems(e) from None
        plan_row = await self.db.read(repo.plan, row.plan_id)
        ctx = await self._dispatch_context(
            f"plans/{row.plan_id}",
            row.session_ids,
            row.dispatching_agency,
            FORM[SupervisionForm(row.form)],
            _aware(row.window_start),
            _aware(row.window_end),
            new_dispatch=False,
        )
        leaving, joining = _id(request.supervisor, "supervisors"), _id(request.replacement, "supervisors")
        team = [_id(n, "supervisors") for n in active if n != request.supervisor] + [joining]
        checked = await self._check_team(ctx, row.dispatching_agency, team, request.name)
        now, view = self.clock.now(), checked["views"][joining]

        def tx(session: Session) -> pb.Dispatch:
            d = repo.dispatch(session, dispatch_id, for_update=True)
            ms = repo.members(session, [dispatch_id])[dispatch_id]
            old = next((m for m in ms if m.supervisor_id == leaving and m.state == "active"), None)
            if old is None or any(m.supervisor_id == joining and m.state == "active" for m in ms):
                raise FailedPrecondition(
                    "TEAM_CHANGED",
                    [PreconditionViolation("bjsv.dispatch.members", request.name, "督导组已被他人修改，请重新读取")],
                )
            ms = repo.replace_member(
                session,
                d,
                old,
                view,
                reason=request.reason.strip(),
                advisory_findings=checked["advisory"],
                rule_set_version=checked["version"],
                decisions=checked["decisions"],
                now=now,
            )
            proto = dispatch_pb(d, ms, plan_row)
            recipients = _dispatch_recipients(session, d, ms, plan_row)
            recipients.insert(
                0, ev.Recipient(party=request.supervisor, display_name=old.display_name, role="supervisor")
            )
            record_event(
                session,
                type=DISPATCH_MEMBER_REPLACED,
                subject=proto.name,
                payload=ev.DispatchMemberReplaced(
                    dispatch=proto,
                    replaced_supervisor=request.supervisor,
                    replacement=request.replacement,
                    reason=request.reason.strip(),
                    recipients=recipients,
                ),
            )
            return proto

        return pb.ReplaceDispatchMemberResponse(dispatch=await self.db.write(tx))

    async def GetDispatch(self, request: pb.GetDispatchRequest, context) -> pb.GetDispatchResponse:
        dispatch_id = _id(request.name, "dispatches")

        def read(session: Session) -> pb.Dispatch | None:
            row = repo.dispatch(session, dispatch_id)
            return self._dispatch_proto(session, row) if row else None

        proto = await self.db.read(read)
        if proto is None:
            raise NotFound(request.name)
        return pb.GetDispatchResponse(dispatch=proto)

    def _overdue(self, session: Session, rows: list[wm.Dispatch], today: dt.date) -> list[pb.OverdueItem]:
        """Missing records/feedback whose due date has passed (第二十三条)."""
        ids = [r.id for r in rows]
        with_record = repo.record_dispatch_ids(session, ids)
        fb = repo.feedback_pairs(session, ids)
        mem = repo.members(session, ids)
        plans_ = repo.plans_by_ids(session, sorted({r.plan_id for r in rows}))
        out = []

        def late_days(due: dt.date) -> int:
            try:
                return self.calendar().workdays_between(due, today)
            except CalendarNotCovered:
                return (today - due).days

        for r in rows:
            p = plans_[r.plan_id]
            base = {
                "dispatch": f"dispatches/{r.id}",
                "plan": f"plans/{r.plan_id}",
                "dispatching_agency": r.dispatching_agency,
                "institution": p.institution,
                "plan_title": p.title,
            }
            if r.id not in with_record and r.record_due < today:
                out.append(
                    pb.OverdueItem(
                        kind="record", due_date=_iso(r.record_due), overdue_working_days=late_days(r.record_due), **base
                    )
                )
            if r.scope == DispatchScope.EXTERNAL.value and r.feedback_due < today:
                for m in mem[r.id]:
                    if m.state == "active" and (r.id, m.supervisor_id) not in fb:
                        out.append(
                            pb.OverdueItem(
                                kind="feedback",
                                supervisor=f"supervisors/{m.supervisor_id}",
                                due_date=_iso(r.feedback_due),
                                overdue_working_days=late_days(r.feedback_due),
                                **base,
                            )
                        )
        return out

    async def ListDispatches(self, request: pb.ListDispatchesRequest, context) -> pb.ListDispatchesResponse:
        day = _parse_date(request.date, "date", required=False)
        plan_id = _id(request.plan, "plans", "plan") if request.plan else None
        today = self.today()
        offset, limit = _page(request.page_token, request.page_size)

        def read(session: Session) -> tuple[list[pb.Dispatch], int]:
            rows = repo.list_dispatches(
                session,
                day=day,
                agency=request.dispatching_agency,
                plan_id=plan_id,
                include_cancelled=request.include_cancelled,
                due_before=today if request.overdue_only else None,
            )
            if request.overdue_only:
                overdue = {o.dispatch for o in self._overdue(session, rows, today)}
                rows = [r for r in rows if f"dispatches/{r.id}" in overdue]
            page = rows[offset : offset + limit]
            return [self._dispatch_proto(session, r) for r in page], len(rows)

        protos, total = await self.db.read(read)
        nxt = str(offset + limit) if offset + limit < total else ""
        return pb.ListDispatchesResponse(dispatches=protos, next_page_token=nxt, total_size=total)

    # ---------------------------------------------------------------------------------------------- records

    def _record_by_request(self, session: Session, crid: str) -> pb.SupervisionRecord | None:
        ver = repo.record_version_by_request(session, crid)
        if ver is None:
            return None
        rec = repo.record(session, ver.record_id)
        d = repo.dispatch(session, rec.dispatch_id)
        return record_pb(rec, ver, d, repo.plan(session, d.plan_id))

    def _record_input(self, r: pb.SupervisionRecord) -> dict[str, Any]:
        return {
            "answers": [ItemAnswer(a.item_number, ANSWER_IN.get(a.answer), a.remark) for a in r.answers],
            "problems": r.problems.strip(),
            "signatures": [s.strip() for s in r.supervisor_signatures if s.strip()],
            "head": r.institution_head_signature.strip(),
            "sign_date": _parse_date(r.sign_date, "record.sign_date", required=False),
        }

    async def _history(self, subject: str, exclude: int | None = None) -> list[rules_pb2.PriorCase]:
        def read(session: Session) -> list[rules_pb2.PriorCase]:
            rows = [c for c in repo.cases_of_subject(session, subject) if c.id != exclude]
            decs = repo.decisions(session, [c.id for c in rows])
            return [self._prior(c, decs[c.id]) for c in rows if decs[c.id]]

        return await self.db.read(read)

    @staticmethod
    def _prior(c: wm.PenaltyCase, decs: list[wm.CaseDecision]) -> rules_pb2.PriorCase:
        last = decs[-1]
        return rules_pb2.PriorCase(
            name=f"cases/{c.id}",
            trigger=RULES_TRIGGER[CaseTrigger(c.triggers[0])],
            decided_date=_iso(last.decided_on),
            sanction=RUNG_TO_SANCTION.get(PenaltyRung(last.rung), rules_pb2.SANCTION_UNSPECIFIED),
            correction_deadline=_iso(last.correction_deadline),
            corrected_date=_iso(c.corrected_at.astimezone(SHANGHAI).date()) if c.corrected_at else "",
        )

    async def _recommend(
        self,
        kind: CaseSubjectKind,
        subject: str,
        triggers: list[CaseTrigger],
        history: list[rules_pb2.PriorCase],
        description: str,
    ) -> dict[str, Any]:
        """EvaluatePenalty for each trigger; the highest recommended rung wins (D13)."""
        today = self.today()
        reqs = [
            rules_pb2.EvaluatePenaltyRequest(
                subject_kind=rules_pb2.PENALTY_SUBJECT_KIND_INSTITUTION
                if kind is CaseSubjectKind.INSTITUTION
                else rules_pb2.PENALTY_SUBJECT_KIND_SUPERVISOR,
                subject=subject,
                history=history,
                trigger=rules_pb2.NewTrigger(
                    trigger=RULES_TRIGGER[t], occurred_date=today.isoformat(), description=description[:500]
                ),
                as_of_date=today.isoformat(),
            )
            for t in triggers
        ]
        resp = await self._rules_call(
            self.rules().BatchEvaluatePenalty, rules_pb2.BatchEvaluatePenaltyRequest(requests=reqs)
        )
        best = max(resp.responses, key=lambda r: r.recommendation.rung)
        rec = best.recommendation
        rung = SANCTION_TO_RUNG.get(rec.sanction, PenaltyRung.NO_ACTION)
        return {
            "rung": rung.value,
            "article": rec.article or rung.article,
            "sanction_text": rec.sanction_text or rung.text,
            "explanation": "；".join(f.message for f in best.decision.findings),
            "serious": any(r.recommendation.serious for r in resp.responses),
            "immediate_report": any(r.recommendation.immediate_report for r in resp.responses),
            "rule_ids": sorted({f.rule_id for r in resp.responses for f in r.decision.findings}),
            "rule_set_version": best.decision.ruleset_version,
            "decisions": [r.decision.name for r in resp.responses],
            "evaluate_time": self.clock.now().isoformat(),
        }

    def _open_case_tx(
        self,
        session: Session,
        *,
        kind: CaseSubjectKind,
        subject: str,
        subject_name: str,
        district: str,
        triggers: list[CaseTrigger],
        origin: CaseOrigin,
        source: str,
        items: list[int],
        description: str,
        recommendation: dict[str, Any],
        plan_id: int | None,
        dispatch_id: int | None,
        crid: str | None,
    ) -> wm.PenaltyCase:
        row = repo.insert_case(
            session,
            subject_kind=kind.value,
            subject=subject,
            subject_name=subject_name,
            district=district,
            triggers=[t.value for t in triggers],
            origin=origin.value,
            source=source,
            item_numbers=items,
            description=description,
            state=CaseState.OPEN.value,
            recommendation=recommendation,
            plan_id=plan_id,
            dispatch_id=dispatch_id,
            opened_by=_caller_org(),
            client_request_id=crid,
            now=self.clock.now(),
        )
        proto = case_pb(row, [])
        record_event(
            session,
            type=CASE_OPENED,
            subject=proto.name,
            payload=ev.CaseOpened(penalty_case=proto, recipients=_city_and_district(session, district)),
        )
        if recommendation.get("immediate_report"):
            self._raise_immediate_report(session, row)
        return row

    def _raise_immediate_report(self, session: Session, row: wm.PenaltyCase) -> None:
        """第二十四条 如发现严重违规情况，应随时向市鉴定管理中心报告."""
        if not repo.mark_immediate_report(session, row):
            return
        proto = case_pb(row, repo.decisions(session, [row.id])[row.id])
        summary = (
            f"严重违规情况报告（第二十四条）：{row.subject_name or row.subject}，"
            f"{'；'.join(CaseTrigger(t).citation for t in row.triggers)}。建议：{row.recommendation['sanction_text']}"
            f"（{row.recommendation['article']}）。"
        )
        reporting = (
            f"agencies/{row.district}" if row.district and row.district != CITY_CODE else f"agencies/{CITY_CODE}"
        )
        record_event(
            session,
            type=IMMEDIATE_REPORT_RAISED,
            subject=proto.name,
            payload=ev.ImmediateReportRaised(
                penalty_case=proto,
                reporting_agency=reporting,
                summary=summary,
                recipients=[_agency_recipient(session, self.policy.city_centre, "city_centre")],
            ),
        )

    async def SubmitRecord(self, request: pb.SubmitRecordRequest, context) -> pb.SubmitRecordResponse:
        crid = request.client_request_id.strip()
        if not crid:
            raise InvalidArgument(
                "CLIENT_REQUEST_ID_REQUIRED",
                [FieldViolation("client_request_id", "请提供请求编号以保证重复提交只生效一次")],
            )
        if (done := await self.db.read(self._record_by_request, crid)) is not None:
            return pb.SubmitRecordResponse(record=done)
        r = request.record
        dispatch_id = _id(r.dispatch, "dispatches", "record.dispatch")
        submitter = _id(r.submitted_by, "supervisors", "record.submitted_by")
        d = await self.db.read(repo.dispatch, dispatch_id)
        if d is None:
            raise NotFound(r.dispatch)
        if d.state != "active":
            raise FailedPrecondition(
                "DISPATCH_CANCELLED", [PreconditionViolation("bjsv.dispatch.state", r.dispatch, "本次委派已取消")]
            )
        members = (await self.db.read(repo.members, [dispatch_id]))[dispatch_id]
        if not any(m.supervisor_id == submitter and m.state == "active" for m in members):
            raise FailedPrecondition(
                "NOT_A_DISPATCHED_SUPERVISOR",
                [
                    PreconditionViolation(
                        "bjsv.record.submitter", r.submitted_by, "督导记录表应由本次委派的督导员填写提交（第二十三条）"
                    )
                ],
            )
        if await self.db.read(repo.record_of_dispatch, dispatch_id) is not None:
            raise AlreadyExists(
                "RECORD_ALREADY_SUBMITTED",
                "本次委派的督导记录表已提交；如需更正请提交更正版本并说明原因",
                resource_name=r.dispatch,
            )
        plan_row = await self.db.read(repo.plan, d.plan_id)
        form, today, inp = SupervisionForm(d.form), self.today(), self._record_input(r)
        try:
            answers = records.validate_record(
                form,
                inp["answers"],
                problems_text=inp["problems"],
                signatures=inp["signatures"],
                sign_date=inp["sign_date"],
                supervision_start=d.start_day,
                today=today,
                policy=self.policy,
            )
        except ProblemsError as e:
            raise _problems(e) from None
        findings = records.derive_findings(form, answers, policy=self.policy)
        lateness = deadlines.assess_lateness(d.record_due, today, calendar=self.calendar())
        # D14: findings that open an institution case get their recommendation before the transaction.
        to_open = []
        for f in findings:
            if f.triggers:
                desc = records.case_description(form, f)
                rec = await self._recommend(
                    CaseSubjectKind.INSTITUTION,
                    plan_row.institution,
                    list(f.triggers),
                    await self._history(plan_row.institution),
                    desc,
                )
                to_open.append((f, desc, rec))
        now = self.clock.now()

        def tx(session: Session) -> pb.SupervisionRecord:
            if (again := self._record_by_request(session, crid)) is not None:
                return again
            if repo.record_of_dispatch(session, dispatch_id) is not None:
                raise AlreadyExists("RECORD_ALREADY_SUBMITTED", "本次委派的督导记录表已提交", resource_name=r.dispatch)
            rec = repo.insert_record(
                session,
                dispatch_id=dispatch_id,
                district=d.district,
                form=form.value,
                first_submitted_on=today,
                late=lateness.late,
                no_items=[f.item_number for f in findings],
            )
            opened = {}
            for f, desc, recommendation in to_open:
                c = self._open_case_tx(
                    session,
                    kind=CaseSubjectKind.INSTITUTION,
                    subject=plan_row.institution,
                    subject_name=plan_row.institution_name,
                    district=d.district,
                    triggers=list(f.triggers),
                    origin=CaseOrigin.RECORD_FINDING,
                    source=f"records/{rec.id}",
                    items=[f.item_number],
                    description=desc,
                    recommendation=recommendation,
                    plan_id=plan_row.id,
                    dispatch_id=d.id,
                    crid=None,
                )
                opened[f.item_number] = f"cases/{c.id}"
            ver = repo.insert_record_version(
                session,
                record_id=rec.id,
                version=1,
                submitter=submitter,
                answers=answers,
                inp=inp,
                findings=findings,
                opened=opened,
                now=now,
                due=d.record_due,
                lateness=lateness,
                reason="",
                client_request_id=crid,
                actor=_caller_org(),
            )
            proto = record_pb(rec, ver, d, plan_row)
            record_event(
                session,
                type=RECORD_SUBMITTED,
                subject=proto.name,
                payload=ev.RecordSubmitted(
                    record=proto,
                    dispatch=self._dispatch_proto(session, d),
                    recipients=[_agency_recipient(session, d.dispatching_agency, "dispatching_agency")],
                ),
            )
            return proto

        try:
            proto = await self.db.write(tx)
        except sa.exc.IntegrityError:
            if (done := await self.db.read(self._record_by_request, crid)) is not None:
                return pb.SubmitRecordResponse(record=done)
            raise AlreadyExists(
                "RECORD_ALREADY_SUBMITTED", "本次委派的督导记录表已提交", resource_name=r.dispatch
            ) from None
        return pb.SubmitRecordResponse(record=proto)

    async def CorrectRecord(self, request: pb.CorrectRecordRequest, context) -> pb.CorrectRecordResponse:
        crid = request.client_request_id.strip()
        if not crid:
            raise InvalidArgument("CLIENT_REQUEST_ID_REQUIRED", [FieldViolation("client_request_id", "请提供请求编号")])
        if (done := await self.db.read(self._record_by_request, crid)) is not None:
            return pb.CorrectRecordResponse(record=done)
        if not request.reason.strip():
            raise InvalidArgument("REASON_REQUIRED", [FieldViolation("reason", "更正督导记录表须说明原因")])
        record_id = _id(request.name, "records")
        rec = await self.db.read(repo.record, record_id)
        if rec is None:
            raise NotFound(request.name)
        d = await self.db.read(repo.dispatch, rec.dispatch_id)
        plan_row = await self.db.read(repo.plan, d.plan_id)
        members = (await self.db.read(repo.members, [d.id]))[d.id]
        r = request.record
        submitter = _id(r.submitted_by, "supervisors", "record.submitted_by")
        if not any(m.supervisor_id == submitter for m in members):
            raise FailedPrecondition(
                "NOT_A_DISPATCHED_SUPERVISOR",
                [
                    PreconditionViolation(
                        "bjsv.record.submitter", r.submitted_by, "督导记录表应由本次委派的督导员更正（第二十三条）"
                    )
                ],
            )
        form, today, inp = SupervisionForm(rec.form), self.today(), self._record_input(r)
        try:
            answers = records.validate_record(
                form,
                inp["answers"],
                problems_text=inp["problems"],
                signatures=inp["signatures"],
                sign_date=inp["sign_date"],
                supervision_start=d.start_day,
                today=today,
                policy=self.policy,
            )
        except ProblemsError as e:
            raise _problems(e) from None
        findings = records.derive_findings(form, answers, policy=self.policy)
        lateness = deadlines.assess_lateness(d.record_due, today, calendar=self.calendar())
        source = f"records/{record_id}"
        existing = {
            f.item_number: await self.db.read(repo.case_for_source_item, source, f.item_number)
            for f in findings
            if f.triggers
        }
        to_open = []
        for f in findings:
            if f.triggers and existing.get(f.item_number) is None:
                desc = records.case_description(form, f)
                rec_ = await self._recommend(
                    CaseSubjectKind.INSTITUTION,
                    plan_row.institution,
                    list(f.triggers),
                    await self._history(plan_row.institution),
                    desc,
                )
                to_open.append((f, desc, rec_))
        now = self.clock.now()

        def tx(session: Session) -> pb.SupervisionRecord:
            if (again := self._record_by_request(session, crid)) is not None:
                return again
            row = repo.record(session, record_id, for_update=True)
            opened = {n: f"cases/{c.id}" for n, c in existing.items() if c is not None}
            for f, desc, recommendation in to_open:
                c = self._open_case_tx(
                    session,
                    kind=CaseSubjectKind.INSTITUTION,
                    subject=plan_row.institution,
                    subject_name=plan_row.institution_name,
                    district=d.district,
                    triggers=list(f.triggers),
                    origin=CaseOrigin.RECORD_FINDING,
                    source=source,
                    items=[f.item_number],
                    description=desc,
                    recommendation=recommendation,
                    plan_id=plan_row.id,
                    dispatch_id=d.id,
                    crid=None,
                )
                opened[f.item_number] = f"cases/{c.id}"
            previous = row.current_version
            ver = repo.insert_record_version(
                session,
                record_id=record_id,
                version=previous + 1,
                submitter=submitter,
                answers=answers,
                inp=inp,
                findings=findings,
                opened=opened,
                now=now,
                due=d.record_due,
                lateness=lateness,
                reason=request.reason.strip(),
                client_request_id=crid,
                actor=_caller_org(),
            )
            repo.set_current_version(session, row, previous + 1, no_items=[f.item_number for f in findings])
            proto = record_pb(row, ver, d, plan_row)
            record_event(
                session,
                type=RECORD_CORRECTED,
                subject=proto.name,
                payload=ev.RecordCorrected(
                    record=proto,
                    dispatch=self._dispatch_proto(session, d),
                    previous_version=previous,
                    recipients=[_agency_recipient(session, d.dispatching_agency, "dispatching_agency")],
                ),
            )
            return proto

        return pb.CorrectRecordResponse(record=await self.db.write(tx))

    async def GetRecord(self, request: pb.GetRecordRequest, context) -> pb.GetRecordResponse:
        record_id = _id(request.name, "records")

        def read(session: Session) -> pb.SupervisionRecord | None:
            rec = repo.record(session, record_id)
            if rec is None:
                return None
            ver = repo.record_version(session, record_id, request.version or rec.current_version)
            if ver is None:
                return None
            d = repo.dispatch(session, rec.dispatch_id)
            return record_pb(rec, ver, d, repo.plan(session, d.plan_id))

        proto = await self.db.read(read)
        if proto is None:
            raise NotFound(request.name if not request.version else f"{request.name}@{request.version}")
        return pb.GetRecordResponse(record=proto)

    async def ListRecordVersions(self, request: pb.ListRecordVersionsRequest, context) -> pb.ListRecordVersionsResponse:
        record_id = _id(request.name, "records")

        def read(session: Session) -> list[pb.SupervisionRecord] | None:
            rec = repo.record(session, record_id)
            if rec is None:
                return None
            d = repo.dispatch(session, rec.dispatch_id)
            p = repo.plan(session, d.plan_id)
            return [record_pb(rec, v, d, p) for v in repo.record_versions(session, record_id)]

        versions = await self.db.read(read)
        if versions is None:
            raise NotFound(request.name)
        return pb.ListRecordVersionsResponse(versions=versions)

    # ---------------------------------------------------------------------------------------------- feedback

    def _feedback_by_request(self, session: Session, crid: str) -> pb.SupervisorFeedback | None:
        f = repo.feedback_by_request(session, crid)
        if f is None:
            return None
        d = repo.dispatch(session, f.dispatch_id)
        return feedback_pb(f, d, repo.plan(session, d.plan_id))

    async def SubmitFeedback(self, request: pb.SubmitFeedbackRequest, context) -> pb.SubmitFeedbackResponse:
        crid = request.client_request_id.strip()
        if not crid:
            raise InvalidArgument(
                "CLIENT_REQUEST_ID_REQUIRED",
                [FieldViolation("client_request_id", "请提供请求编号以保证重复提交只生效一次")],
            )
        if (done := await self.db.read(self._feedback_by_request, crid)) is not None:
            return pb.SubmitFeedbackResponse(feedback=done)
        f = request.feedback
        dispatch_id = _id(f.dispatch, "dispatches", "feedback.dispatch")
        sup_id = _id(f.supervisor, "supervisors", "feedback.supervisor")
        d = await self.db.read(repo.dispatch, dispatch_id)
        if d is None:
            raise NotFound(f.dispatch)
        if d.state != "active":
            raise FailedPrecondition(
                "DISPATCH_CANCELLED", [PreconditionViolation("bjsv.dispatch.state", f.dispatch, "本次委派已取消")]
            )
        if d.scope != DispatchScope.EXTERNAL.value:
            raise FailedPrecondition(
                "FEEDBACK_EXTERNAL_ONLY",
                [
                    PreconditionViolation(
                        "bjsv.feedback.scope", f.dispatch, "外督员情况反馈表（附件4）仅适用于委派的外督员（第二十三条）"
                    )
                ],
            )
        members = (await self.db.read(repo.members, [dispatch_id]))[dispatch_id]
        member = next((m for m in members if m.supervisor_id == sup_id and m.state == "active"), None)
        if member is None:
            raise FailedPrecondition(
                "NOT_A_DISPATCHED_SUPERVISOR",
                [PreconditionViolation("bjsv.feedback.supervisor", f.supervisor, "该外督员不在本次委派的督导组中")],
            )
        plan_row = await self.db.read(repo.plan, d.plan_id)
        answers = feedback_rules.FeedbackAnswers(
            ANSWER_IN.get(f.badge_worn), ANSWER_IN.get(f.duties_performed), ANSWER_IN.get(f.integrity_kept)
        )
        if d.form == SupervisionForm.ON_SITE.value:
            selected = dispatch_rules.select_sessions(_windows(plan_row), d.session_ids)
            allowed = sorted({s.start.astimezone(SHANGHAI).date() for s in selected})
        else:
            allowed = dispatch_rules.Window(_aware(d.window_start), _aware(d.window_end)).days()
        entry, exit_ = _dt(f, "entry_time"), _dt(f, "exit_time")
        try:
            feedback_rules.validate_feedback(
                answers,
                entry=entry,
                exit=exit_,
                allowed_days=allowed,
                comments=f.comments,
                signed_by=f.signed_by,
                policy=self.policy,
            )
        except ProblemsError as e:
            raise _problems(e) from None
        if await self.db.read(lambda s: (d.id, sup_id) in repo.feedback_pairs(s, [d.id])):
            raise AlreadyExists(
                "FEEDBACK_ALREADY_SUBMITTED",
                f"已提交对外督员{member.display_name}的情况反馈表",
                resource_name=f.dispatch,
            )
        today = self.today()
        lateness = deadlines.assess_lateness(d.feedback_due, today, calendar=self.calendar())
        trigger = feedback_rules.review_trigger(answers, self.policy)
        review = None
        if trigger is not None:
            desc = feedback_rules.review_description(answers, member.display_name, f.comments)
            review = (
                desc,
                await self._recommend(
                    CaseSubjectKind.SUPERVISOR, f.supervisor, [trigger], await self._history(f.supervisor), desc
                ),
            )
        now = self.clock.now()

        def tx(session: Session) -> pb.SupervisorFeedback:
            if (again := self._feedback_by_request(session, crid)) is not None:
                return again
            row = repo.insert_feedback(
                session,
                d,
                member,
                entry_time=entry,
                exit_time=exit_,
                badge_worn=answers.badge_worn.value,
                duties_performed=answers.duties_performed.value,  # type: ignore[union-attr]
                integrity_kept=answers.integrity_kept.value,
                comments=f.comments.strip(),  # type: ignore[union-attr]
                signed_by=f.signed_by.strip(),
                now=now,
                today=today,
                lateness=lateness,
                client_request_id=crid,
                actor=_caller_org(),
            )
            if review is not None:
                c = self._open_case_tx(
                    session,
                    kind=CaseSubjectKind.SUPERVISOR,
                    subject=f.supervisor,
                    subject_name=member.display_name,
                    district=d.district,
                    triggers=[trigger],
                    origin=CaseOrigin.FEEDBACK,
                    source=f"feedback/{row.id}",
                    items=[],
                    description=review[0],
                    recommendation=review[1],
                    plan_id=plan_row.id,
                    dispatch_id=d.id,
                    crid=None,
                )
                repo.link_review_case(session, row, c)
            proto = feedback_pb(row, d, plan_row)
            record_event(
                session,
                type=FEEDBACK_SUBMITTED,
                subject=proto.name,
                payload=ev.FeedbackSubmitted(
                    feedback=proto,
                    dispatch=self._dispatch_proto(session, d),
                    recipients=[_agency_recipient(session, d.dispatching_agency, "dispatching_agency")],
                ),
            )
            return proto

        try:
            proto = await self.db.write(tx)
        except sa.exc.IntegrityError:
            if (done := await self.db.read(self._feedback_by_request, crid)) is not None:
                return pb.SubmitFeedbackResponse(feedback=done)
            raise AlreadyExists(
                "FEEDBACK_ALREADY_SUBMITTED", "该外督员的情况反馈表已提交", resource_name=f.dispatch
            ) from None
        return pb.SubmitFeedbackResponse(feedback=proto)

    async def GetFeedback(self, request: pb.GetFeedbackRequest, context) -> pb.GetFeedbackResponse:
        fid = _id(request.name, "feedback")

        def read(session: Session) -> pb.SupervisorFeedback | None:
            f = repo.feedback(session, fid)
            if f is None:
                return None
            d = repo.dispatch(session, f.dispatch_id)
            return feedback_pb(f, d, repo.plan(session, d.plan_id))

        proto = await self.db.read(read)
        if proto is None:
            raise NotFound(request.name)
        return pb.GetFeedbackResponse(feedback=proto)

    # ---------------------------------------------------------------------------------------------- cases

    def _case_proto(self, session: Session, row: wm.PenaltyCase) -> pb.PenaltyCase:
        return case_pb(row, repo.decisions(session, [row.id])[row.id])

    async def OpenCase(self, request: pb.OpenCaseRequest, context) -> pb.OpenCaseResponse:
        crid = request.client_request_id.strip()
        if not crid:
            raise InvalidArgument("CLIENT_REQUEST_ID_REQUIRED", [FieldViolation("client_request_id", "请提供请求编号")])

        def by_request(session: Session) -> pb.PenaltyCase | None:
            row = repo.case_by_request(session, crid)
            return self._case_proto(session, row) if row else None

        if (done := await self.db.read(by_request)) is not None:
            return pb.OpenCaseResponse(penalty_case=done)
        c = request.penalty_case
        kind = SUBJECT_KIND_IN.get(c.subject_kind)
        triggers = [TRIGGER_IN.get(t) for t in c.triggers]
        try:
            case_rules.validate_open(kind, c.subject, triggers, c.description)
        except ProblemsError as e:
            raise _problems(e) from None
        plan_id = _id(c.plan, "plans", "penalty_case.plan") if c.plan else None
        dispatch_id = _id(c.dispatch, "dispatches", "penalty_case.dispatch") if c.dispatch else None
        plan_row = await self.db.read(repo.plan, plan_id) if plan_id else None
        if plan_id and plan_row is None:
            raise NotFound(c.plan)
        if kind is CaseSubjectKind.INSTITUTION:
            inst = await self.db.read(repo.institution, c.subject)
            if inst is None:
                raise NotFound(c.subject)
            subject_name, home = inst.display_name, inst.district_code
        else:
            views = await self.db.read(repo.supervisors, [_id(c.subject, "supervisors", "penalty_case.subject")])
            if not views:
                raise NotFound(c.subject)
            v = next(iter(views.values()))
            subject_name, home = v.full_name, v.district_code
        district = c.district or (plan_row.district if plan_row else home)
        if not (is_district(district) or district == CITY_CODE):
            raise InvalidArgument(
                "DISTRICT_UNKNOWN", [FieldViolation("penalty_case.district", "区县代码不在附件1 表3中")]
            )
        desc = c.description.strip()
        recommendation = await self._recommend(kind, c.subject, triggers, await self._history(c.subject), desc)  # type: ignore[arg-type]

        def tx(session: Session) -> pb.PenaltyCase:
            if (again := repo.case_by_request(session, crid)) is not None:
                return self._case_proto(session, again)
            row = self._open_case_tx(
                session,
                kind=kind,
                subject=c.subject,
                subject_name=subject_name,  # type: ignore[arg-type]
                district=district,
                triggers=triggers,
                origin=CaseOrigin.MANUAL,  # type: ignore[arg-type]
                source=c.source,
                items=list(c.item_numbers),
                description=desc,
                recommendation=recommendation,
                plan_id=plan_id,
                dispatch_id=dispatch_id,
                crid=crid,
            )
            return self._case_proto(session, row)

        return pb.OpenCaseResponse(penalty_case=await self.db.write(tx))

    async def RecordCaseDecision(self, request: pb.RecordCaseDecisionRequest, context) -> pb.RecordCaseDecisionResponse:
        case_id = _id(request.name, "cases")
        row = await self.db.read(repo.case, case_id)
        if row is None:
            raise NotFound(request.name)
        kind = CaseSubjectKind(row.subject_kind)
        _require_role(case_rules.official_roles(kind), "记录处理决定（D13）")
        dec = request.decision
        rung = RUNG_IN.get(dec.rung)
        deadline = _parse_date(dec.correction_deadline, "decision.correction_deadline", required=False)
        today, now = self.today(), self.clock.now()
        org = dec.official_org or _caller_org()

        try:  # validate before anything takes effect; the transaction re-checks against the locked row
            case_rules.decide(request.name, CaseState(row.state), kind, rung, deadline, dec.official, today)
        except ProblemsError as e:
            raise _problems(e) from None

        def tx(session: Session) -> pb.PenaltyCase:
            c = repo.case(session, case_id, for_update=True)
            try:
                state = case_rules.decide(request.name, CaseState(c.state), kind, rung, deadline, dec.official, today)
            except ProblemsError as e:
                raise _problems(e) from None
            d = repo.insert_case_decision(
                session,
                c,
                state=state.value,
                rung=rung.value,  # type: ignore[union-attr]
                official=dec.official.strip(),
                official_org=org,
                note=dec.note.strip(),
                correction_deadline=deadline,
                now=now,
                today=today,
            )
            proto = self._case_proto(session, c)
            recipients = _city_and_district(session, c.district)
            if c.subject_kind == CaseSubjectKind.INSTITUTION.value:
                recipients.append(ev.Recipient(party=c.subject, display_name=c.subject_name, role="institution"))
            else:
                recipients.append(ev.Recipient(party=c.subject, display_name=c.subject_name, role="supervisor"))
            record_event(
                session,
                type=CASE_DECIDED,
                subject=proto.name,
                payload=ev.CaseDecided(penalty_case=proto, decision=decision_pb(d), recipients=recipients),
            )
            if rung in (PenaltyRung.SUPERVISOR_SUSPENSION, PenaltyRung.SUPERVISOR_REVOCATION):
                # 第二十七条 暂停督导工作 / 取消外督员资格 take effect on the appointment (the supervisor is no
                # longer dispatchable) in this same transaction: no decision without the change, nor the reverse.
                note = d.note
                repo.apply_supervisor_sanction(
                    session,
                    supervisor_id=_id(c.subject, "supervisors"),
                    revoke=rung is PenaltyRung.SUPERVISOR_REVOCATION,
                    reason=f"{rung.text}（{request.name}）" + (f"：{note}" if note else ""),
                    decided_by=d.official,
                    case_reference=request.name,
                    now=now.astimezone(dt.UTC),
                    policy=self.registry_policy,
                )
            return proto

        return pb.RecordCaseDecisionResponse(penalty_case=await self.db.write(tx))

    async def RecordCorrection(self, request: pb.RecordCorrectionRequest, context) -> pb.RecordCorrectionResponse:
        case_id = _id(request.name, "cases")
        today, now = self.today(), self.clock.now()

        def tx(session: Session) -> pb.PenaltyCase:
            c = repo.case(session, case_id, for_update=True)
            if c is None:
                raise NotFound(request.name)
            try:
                state = case_rules.record_correction(
                    request.name, CaseState(c.state), c.correction_deadline, today, request.note
                )
            except ProblemsError as e:
                raise _problems(e) from None
            repo.record_correction(session, c, state=state.value, note=request.note.strip(), now=now)
            proto = self._case_proto(session, c)
            recipients = _city_and_district(session, c.district)
            record_event(
                session,
                type=CASE_CORRECTED,
                subject=proto.name,
                payload=ev.CaseCorrected(penalty_case=proto, recipients=recipients),
            )
            return proto

        return pb.RecordCorrectionResponse(penalty_case=await self.db.write(tx))

    async def GetCase(self, request: pb.GetCaseRequest, context) -> pb.GetCaseResponse:
        case_id = _id(request.name, "cases")

        def read(session: Session) -> pb.PenaltyCase | None:
            row = repo.case(session, case_id)
            return self._case_proto(session, row) if row else None

        proto = await self.db.read(read)
        if proto is None:
            raise NotFound(request.name)
        return pb.GetCaseResponse(penalty_case=proto)

    async def ListCases(self, request: pb.ListCasesRequest, context) -> pb.ListCasesResponse:
        offset, limit = _page(request.page_token, request.page_size)
        state = CASE_STATE_IN.get(request.state)
        plan_id = _id(request.plan, "plans", "plan") if request.plan else None

        def read(session: Session) -> tuple[list[pb.PenaltyCase], int]:
            rows, total = repo.list_cases(
                session,
                subject=request.subject,
                state=state.value if state else "",
                district=request.district,
                plan_id=plan_id,
                offset=offset,
                limit=limit,
            )
            decs = repo.decisions(session, [r.id for r in rows])
            return [case_pb(r, decs[r.id]) for r in rows], total

        protos, total = await self.db.read(read)
        nxt = str(offset + limit) if offset + limit < total else ""
        return pb.ListCasesResponse(cases=protos, next_page_token=nxt, total_size=total)

    async def escalate_overdue_corrections(self) -> list[str]:
        """D13 拒不改正: a correction deadline passed with no correction recorded → escalate one rung."""
        today = self.today()
        escalated = []
        for case_id in await self.db.read(repo.cases_past_correction_deadline, today):
            row = await self.db.read(repo.case, case_id)
            decs = (await self.db.read(repo.decisions, [case_id]))[case_id]
            kind = CaseSubjectKind(row.subject_kind)
            history = [*await self._history(row.subject, exclude=case_id), self._prior(row, decs)]
            recommendation = await self._recommend(
                kind, row.subject, [CaseTrigger(t) for t in row.triggers], history, row.description
            )
            last = PenaltyRung(decs[-1].rung) if decs else None
            rung = case_rules.escalated_rung(kind, last, PenaltyRung(recommendation["rung"]))
            if rung.value != recommendation["rung"]:
                recommendation["explanation"] = (
                    f"改正期限届满未改正，视为拒不改正（第二十六条，D13），处理建议上调一级为“{rung.text}”。"
                    + recommendation["explanation"]
                )
            recommendation.update(rung=rung.value, article=rung.article, sanction_text=rung.text)

            def tx(
                session: Session,
                case_id: int = case_id,
                recommendation: dict = recommendation,
                previous: PenaltyRung | None = last,
                kind: CaseSubjectKind = kind,
            ) -> str | None:
                c = repo.case(session, case_id, for_update=True)
                if not case_rules.due_for_escalation(CaseState(c.state), c.correction_deadline, today):
                    return None  # corrected or escalated meanwhile
                missed = repo.escalate_case(session, c, state=CaseState.ESCALATED.value, recommendation=recommendation)
                proto = self._case_proto(session, c)
                recipients = _city_and_district(session, c.district)
                recipients.append(
                    ev.Recipient(
                        party=c.subject,
                        display_name=c.subject_name,
                        role="institution" if kind is CaseSubjectKind.INSTITUTION else "supervisor",
                    )
                )
                record_event(
                    session,
                    type=CASE_ESCALATED,
                    subject=proto.name,
                    payload=ev.CaseEscalated(
                        penalty_case=proto,
                        missed_deadline=_iso(missed),
                        previous_rung=RUNG[previous] if previous else pb.PENALTY_RUNG_UNSPECIFIED,
                        recipients=recipients,
                    ),
                )
                if recommendation.get("immediate_report"):
                    self._raise_immediate_report(session, c)
                return proto.name

            if (name := await self.db.write(tx)) is not None:
                escalated.append(name)
        return escalated

    # ---------------------------------------------------------------------------------------------- periods

    def _close_period_tx(
        self, session: Session, period: Period, include_empty: bool
    ) -> tuple[list[pb.DistrictReport], bool]:
        key = period.key
        if repo.closed_period(session, key) is not None:
            return [report_pb(r, self.policy.city_centre) for r in repo.reports_of_period(session, key)], False
        figures = reports.aggregate(period, **repo.period_report_facts(session, period), include_empty=include_empty)
        out = []
        for row in repo.insert_closed_period(session, period, figures, closed_by=_caller_org(), now=self.clock.now()):
            proto = report_pb(row, self.policy.city_centre)
            record_event(
                session,
                type=PERIOD_CLOSED,
                subject=proto.name,
                payload=ev.PeriodClosed(report=proto, recipients=_city_and_district(session, row.district)),
            )
            out.append(proto)
        return out, True

    async def ClosePeriod(self, request: pb.ClosePeriodRequest, context) -> pb.ClosePeriodResponse:
        day = _parse_date(request.date, "date")
        period = periods.period_of(day, self.policy)  # type: ignore[arg-type]
        if not periods.has_ended(period, self.today()):
            raise FailedPrecondition(
                "PERIOD_NOT_ENDED",
                [
                    PreconditionViolation(
                        "bjsv.report.period",
                        period.key,
                        f"半月报告期{period.start.isoformat()}至{period.end.isoformat()}尚未结束（第二十四条，D10）",
                    )
                ],
            )
        out, new = await self._close(period, request.include_empty_districts)
        return pb.ClosePeriodResponse(reports=out, newly_closed=new)

    async def _close(self, period: Period, include_empty: bool) -> tuple[list[pb.DistrictReport], bool]:
        """Close once: a concurrent close (sweep task, another replica) loses on the closed_period key."""
        try:
            return await self.db.write(self._close_period_tx, period, include_empty)
        except sa.exc.IntegrityError:
            return await self.db.read(self._close_period_tx_readonly, period)

    def _close_period_tx_readonly(self, session: Session, period: Period) -> tuple[list[pb.DistrictReport], bool]:
        return [report_pb(r, self.policy.city_centre) for r in repo.reports_of_period(session, period.key)], False

    async def close_ended_periods(self) -> list[str]:
        today = self.today()
        first_day = await self.db.read(repo.earliest_activity)
        if first_day is None:
            return []
        names = []
        for period in periods.ended_periods(
            None, today, first=periods.period_of(first_day, self.policy), policy=self.policy
        ):
            if await self.db.read(repo.closed_period, period.key) is None:
                out, new = await self._close(period, False)
                names += [r.name for r in out] if new else []
        return names

    async def GetDistrictReport(self, request: pb.GetDistrictReportRequest, context) -> pb.GetDistrictReportResponse:
        parts = request.name.split("/")
        if len(parts) != 3 or parts[0] != "reports":
            raise InvalidArgument("NAME_INVALID", [FieldViolation("name", "应写为 reports/区县代码/YYYY-MM-1 或 -2")])
        row = await self.db.read(repo.report, parts[2], parts[1])
        if row is None:
            raise NotFound(request.name)
        return pb.GetDistrictReportResponse(report=report_pb(row, self.policy.city_centre))

    # ---------------------------------------------------------------------------------------------- status

    async def GetPlanStatus(self, request: pb.GetPlanStatusRequest, context) -> pb.GetPlanStatusResponse:
        plan_id = _id(request.plan, "plans", "plan")
        today = self.today()

        def read(session: Session) -> pb.GetPlanStatusResponse | None:
            p = repo.plan(session, plan_id)
            if p is None:
                return None
            rows = repo.list_dispatches(
                session, day=None, agency="", plan_id=plan_id, include_cancelled=True, due_before=None
            )
            overdue = self._overdue(session, [r for r in rows if r.state == "active"], today)
            mem = repo.members(session, [r.id for r in rows])
            out = pb.GetPlanStatusResponse(plan=plan_pb(p))
            for r in rows:
                st = pb.DispatchStatus(dispatch=dispatch_pb(r, mem[r.id], p))
                rec = repo.record_of_dispatch(session, r.id)
                if rec is not None:
                    st.record.CopyFrom(record_pb(rec, repo.record_version(session, rec.id, rec.current_version), r, p))
                fbs = repo.feedback_of_dispatch(session, r.id)
                st.feedback.extend(feedback_pb(f, r, p) for f in fbs)
                got = {f.supervisor_id for f in fbs}
                if r.scope == DispatchScope.EXTERNAL.value and r.state == "active":
                    st.feedback_missing.extend(
                        f"supervisors/{m.supervisor_id}"
                        for m in mem[r.id]
                        if m.state == "active" and m.supervisor_id not in got
                    )
                name = f"dispatches/{r.id}"
                st.record_overdue = any(o.dispatch == name and o.kind == "record" for o in overdue)
                st.feedback_overdue = any(o.dispatch == name and o.kind == "feedback" for o in overdue)
                out.dispatches.append(st)
            cases_, _ = repo.list_cases(
                session, subject="", state="", district="", plan_id=plan_id, offset=0, limit=500
            )
            decs = repo.decisions(session, [c.id for c in cases_])
            out.cases.extend(case_pb(c, decs[c.id]) for c in cases_)
            return out

        resp = await self.db.read(read)
        if resp is None:
            raise NotFound(request.plan)
        return resp

    async def ListOverdue(self, request: pb.ListOverdueRequest, context) -> pb.ListOverdueResponse:
        today = self.today()

        def read(session: Session) -> list[pb.OverdueItem]:
            rows = repo.list_dispatches(
                session,
                day=None,
                agency=request.dispatching_agency,
                plan_id=None,
                include_cancelled=False,
                due_before=today,
            )
            if request.district:
                rows = [r for r in rows if r.district == request.district]
            items = self._overdue(session, rows, today)
            return sorted(items, key=lambda o: (o.due_date, o.dispatch, o.kind, o.supervisor))

        return pb.ListOverdueResponse(items=await self.db.read(read), as_of_date=today.isoformat())

    # ---------------------------------------------------------------------------------------------- admin

    async def run_sweep(self) -> pb.RunSweepResponse:
        async with self._sweep_lock:
            escalated = await self.escalate_overdue_corrections()
            closed = await self.close_ended_periods()
        return pb.RunSweepResponse(
            escalated_cases=escalated, closed_reports=closed, as_of_date=self.today().isoformat()
        )

    async def RunSweep(self, request: pb.RunSweepRequest, context) -> pb.RunSweepResponse:
        _require_role(("operator",), "运行期限检查")
        return await self.run_sweep()

    async def GetSupervisionClock(
        self, request: pb.GetSupervisionClockRequest, context
    ) -> pb.GetSupervisionClockResponse:
        return pb.GetSupervisionClockResponse(now=_ts(self.clock.now()), mode=self.clock.mode)

    async def SetSupervisionClock(
        self, request: pb.SetSupervisionClockRequest, context
    ) -> pb.SetSupervisionClockResponse:
        _require_role(("operator",), "调整督导工作时钟")
        if not self.settings.supervision_test_clock:
            raise FailedPrecondition(
                "TEST_CLOCK_DISABLED",
                [
                    PreconditionViolation(
                        "bjsv.admin.clock", "clock", "未启用测试时钟（BJSV_SUPERVISION_TEST_CLOCK），不能调整时钟"
                    )
                ],
            )
        if request.reset:
            self.clock.fix(None)
        elif request.HasField("fixed_time"):
            self.clock.fix(request.fixed_time.ToDatetime(tzinfo=SHANGHAI))
        else:
            raise InvalidArgument("CLOCK_VALUE_REQUIRED", [FieldViolation("fixed_time", "请提供时间或 reset")])
        return pb.SetSupervisionClockResponse(now=_ts(self.clock.now()), mode=self.clock.mode)

    async def sweep_loop(self) -> None:
        """Background task: escalate passed correction deadlines and close ended periods."""
        interval = self.settings.supervision_sweep_interval
        while True:
            await asyncio.sleep(interval)
            try:
                result = await self.run_sweep()
                if result.escalated_cases or result.closed_reports:
                    log.info(
                        "supervision sweep: escalated=%s closed=%s",
                        list(result.escalated_cases),
                        list(result.closed_reports),
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervision sweep failed")


def attach(
    service: Service, *, settings: SupervisionSettings | None = None, clock: WorkflowClock | None = None
) -> SupervisionApi:
    """Register SupervisionService (and its sweep task) on the registry's Service (composition root)."""
    settings = settings or SupervisionSettings()
    if service.database is None:
        raise RuntimeError("the supervision workflow needs the registry database")
    api = SupervisionApi(
        settings,
        service.database,
        clock=clock,
        policy=settings.workflow_policy(),
        registry_policy=settings.policy(),
    )
    service.servicers.append(Servicer(supervision_pb2_grpc.add_SupervisionServiceServicer_to_server, api, SERVICE_NAME))
    if settings.supervision_sweep_interval > 0:
        service.tasks.append(api.sweep_loop)
    return api


def supervision_servicer(wiring: Any) -> Servicer:
    """Factory for the registry composition root's SERVICERS list (shares its database and rules channel)."""
    settings = SupervisionSettings()
    api = SupervisionApi(
        settings,
        wiring.db,
        clock=WorkflowClock(base=wiring.clock),
        policy=settings.workflow_policy(),
        parameters=wiring.parameters,
        registry_policy=wiring.policy,
    )
    return Servicer(supervision_pb2_grpc.add_SupervisionServiceServicer_to_server, api, SERVICE_NAME)


def sweep_tasks(servicers: list[Servicer]) -> list[Callable[[], Awaitable[None]]]:
    """The workflow's periodic sweep (correction deadlines, period close), for the composition root's tasks."""
    return [
        s.implementation.sweep_loop
        for s in servicers
        if isinstance(s.implementation, SupervisionApi) and s.implementation.settings.supervision_sweep_interval > 0
    ]
