"""The workflow's API edge converters: enum maps and `to_proto_*` / `from_proto_*` between the
SupervisionService messages (proto/bjsv/registry/v1/supervision.proto) and the domain / stored rows. Names,
dates and page tokens are parsed by common.api, as in every other servicer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from bjsv.registry.v1 import supervision_pb2 as pb
from common import api
from common.clock import SHANGHAI
from services.registry.domain import id_number
from services.registry.domain.workflow import checklists
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
    PlanIn,
    PlanSessionIn,
    RecordInput,
    SessionPersonIn,
    SupervisionForm,
    certification_mode_text,
)
from services.registry.storage import workflow_models as wm
from services.registry.workflow.results import (
    CaseView,
    DispatchView,
    FeedbackView,
    OverdueItem,
    PlanStatus,
    PoolMember,
    Recommendation,
    RecordView,
    TeamFinding,
)

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
CASE_STATE = {
    CaseState.OPEN: pb.CASE_STATE_OPEN,
    CaseState.AWAITING_CORRECTION: pb.CASE_STATE_AWAITING_CORRECTION,
    CaseState.ESCALATED: pb.CASE_STATE_ESCALATED,
    CaseState.CLOSED: pb.CASE_STATE_CLOSED,
}
CASE_STATE_IN = {v: k for k, v in CASE_STATE.items()}


# -- small helpers ---------------------------------------------------------------------------------------


def timestamp(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC))
    return ts


def instant(msg: Any, field: str) -> dt.datetime | None:
    if not msg.HasField(field):
        return None
    return getattr(msg, field).ToDatetime(tzinfo=SHANGHAI)


def aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes (stored as UTC); PostgreSQL returns aware ones."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# -- proto <-> domain ------------------------------------------------------------------------------------


def _from_proto_person(p: pb.SessionPerson) -> SessionPersonIn:
    return SessionPersonIn(p.display_name.strip(), id_number.normalise(p.id_number), p.supervisor, p.role.strip())


def from_proto_plan(p: pb.Plan) -> PlanIn:
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
                instant(s, "start_time"),
                instant(s, "end_time"),
                s.venue.strip(),
                [_from_proto_person(x) for x in s.examiners],
                [_from_proto_person(x) for x in s.staff],
                list(s.internal_supervisors),
            )
            for s in p.sessions
        ],
    )


def to_proto_plan(row: wm.CertPlan) -> pb.Plan:
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
        create_time=timestamp(aware(row.created_at)),
        update_time=timestamp(aware(row.updated_at)),
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
                start_time=timestamp(dt.datetime.fromisoformat(s["start"])),
                end_time=timestamp(dt.datetime.fromisoformat(s["end"])),
                venue=s["venue"],
                examiners=[person(x) for x in s["examiners"]],
                staff=[person(x) for x in s["staff"]],
                internal_supervisors=s["internal_supervisors"],
            )
        )
    return out


def to_proto_dispatch(v: DispatchView) -> pb.Dispatch:
    d, members, plan_row = v.dispatch, v.members, v.plan
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
        supervision_start_time=timestamp(aware(d.window_start)),
        supervision_end_time=timestamp(aware(d.window_end)),
        record_due_date=api.format_date(d.record_due),
        feedback_due_date=api.format_date(d.feedback_due),
        state=DSTATE[d.state],
        cancel_reason=d.cancel_reason,
        create_time=timestamp(aware(d.created_at)),
        plan_title=plan_row.title,
        institution=plan_row.institution,
        institution_name=plan_row.institution_name,
        district=d.district,
        rule_decisions=d.decisions,
    )
    out.advisory_findings.extend(to_proto_team_finding(TeamFinding(**f)) for f in d.advisory_findings)
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
                add_time=timestamp(aware(m.added_at)),
            )
        )
    return out


def to_proto_record(v: RecordView) -> pb.SupervisionRecord:
    rec, ver, d, plan_row = v.record, v.version, v.dispatch, v.plan
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
        sign_date=api.format_date(ver.sign_date),
        findings=[
            pb.RecordFinding(
                item_number=f["item_number"],
                item_text=f["item_text"],
                remark=f["remark"],
                opened_case=f.get("opened_case", ""),
            )
            for f in ver.findings
        ],
        submit_time=timestamp(aware(ver.submitted_at)),
        due_date=api.format_date(ver.due_date),
        late=ver.late_calendar_days > 0,
        late_working_days=ver.late_working_days,
        late_calendar_days=ver.late_calendar_days,
        correction_reason=ver.correction_reason,
        client_request_id=ver.client_request_id,
        supervision_start_time=timestamp(aware(d.window_start)),
        supervision_end_time=timestamp(aware(d.window_end)),
        dispatching_agency=d.dispatching_agency,
    )


def to_proto_feedback(v: FeedbackView) -> pb.SupervisorFeedback:
    f, d, plan_row = v.feedback, v.dispatch, v.plan
    return pb.SupervisorFeedback(
        name=f"feedback/{f.id}",
        dispatch=f"dispatches/{d.id}",
        supervisor=f"supervisors/{f.supervisor_id}",
        supervisor_name=f.supervisor_name,
        institution=plan_row.institution,
        institution_name=plan_row.institution_name,
        entry_time=timestamp(aware(f.entry_time)),
        exit_time=timestamp(aware(f.exit_time)),
        badge_worn=ANSWER[Answer(f.badge_worn)],
        duties_performed=ANSWER[Answer(f.duties_performed)],
        integrity_kept=ANSWER[Answer(f.integrity_kept)],
        comments=f.comments,
        signed_by=f.signed_by,
        submit_time=timestamp(aware(f.submitted_at)),
        due_date=api.format_date(f.due_date),
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


def to_proto_recommendation(r: Recommendation) -> pb.CaseRecommendation:
    out = pb.CaseRecommendation(
        rung=RUNG[r.rung],
        article=r.article,
        sanction_text=r.sanction_text,
        explanation=r.explanation,
        serious=r.serious,
        rule_ids=r.rule_ids,
        rule_set_version=r.rule_set_version,
        rule_decisions=r.decisions,
    )
    evaluated = timestamp(dt.datetime.fromisoformat(r.evaluate_time)) if r.evaluate_time else None
    if evaluated is not None:
        out.evaluate_time.CopyFrom(evaluated)
    return out


def to_proto_decision(d: wm.CaseDecision, sanction_texts: Mapping[PenaltyRung, str]) -> pb.CaseDecision:
    rung = PenaltyRung(d.rung)
    return pb.CaseDecision(
        rung=RUNG[rung],
        official=d.official,
        official_org=d.official_org,
        decide_time=timestamp(aware(d.decided_at)),
        note=d.note,
        correction_deadline=api.format_date(d.correction_deadline),
        sanction_text=sanction_texts[rung],
    )


def to_proto_case(v: CaseView) -> pb.PenaltyCase:
    c, decisions = v.case, v.decisions
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
        recommendation=to_proto_recommendation(Recommendation.from_json(c.recommendation)),
        decisions=[to_proto_decision(d, v.sanction_texts) for d in decisions],
        correction_deadline=api.format_date(c.correction_deadline),
        correct_time=timestamp(aware(c.corrected_at)) if c.corrected_at else None,
        correction_note=c.correction_note,
        escalation_count=c.escalation_count,
        open_time=timestamp(aware(c.opened_at)),
        opened_by=c.opened_by,
        plan=f"plans/{c.plan_id}" if c.plan_id else "",
        dispatch=f"dispatches/{c.dispatch_id}" if c.dispatch_id else "",
        immediate_report_raised=c.immediate_report_raised,
    )


def to_proto_report(r: wm.DistrictReport, city_centre: str) -> pb.DistrictReport:
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
        close_time=timestamp(aware(r.closed_at)),
        recipient=city_centre,
        feedback_count=f["feedback_count"],
    )


def from_proto_record(r: pb.SupervisionRecord) -> RecordInput:
    return RecordInput(
        answers=[ItemAnswer(a.item_number, ANSWER_IN.get(a.answer), a.remark) for a in r.answers],
        problems=r.problems.strip(),
        signatures=[s.strip() for s in r.supervisor_signatures if s.strip()],
        head_signature=r.institution_head_signature.strip(),
        sign_date=api.parse_optional_date(r.sign_date, "record.sign_date"),
    )


def to_proto_overdue(o: OverdueItem) -> pb.OverdueItem:
    return pb.OverdueItem(
        kind=o.kind,
        dispatch=o.dispatch,
        plan=o.plan,
        dispatching_agency=o.dispatching_agency,
        institution=o.institution,
        plan_title=o.plan_title,
        supervisor=o.supervisor,
        due_date=api.format_date(o.due_date),
        overdue_working_days=o.overdue_working_days,
    )


def to_proto_plan_status(status: PlanStatus) -> pb.GetPlanStatusResponse:
    out = pb.GetPlanStatusResponse(plan=to_proto_plan(status.plan))
    for s in status.dispatches:
        st = pb.DispatchStatus(
            dispatch=to_proto_dispatch(s.view),
            feedback=[to_proto_feedback(f) for f in s.feedback],
            feedback_missing=s.feedback_missing,
            record_overdue=s.record_overdue,
            feedback_overdue=s.feedback_overdue,
        )
        if s.record is not None:
            st.record.CopyFrom(to_proto_record(s.record))
        out.dispatches.append(st)
    out.cases.extend(to_proto_case(c) for c in status.cases)
    return out


def to_proto_team_finding(
    f: TeamFinding, severity: pb.FindingSeverity = pb.FINDING_SEVERITY_ADVISORY
) -> pb.TeamFinding:
    return pb.TeamFinding(rule_id=f.rule_id, severity=severity, message=f.message, article=f.article, subject=f.subject)


# -- 第十六条 declarations, 第二十二条(九)(十) complaints and major-problem reports

CONFLICT_KIND_IN = {
    pb.CONFLICT_KIND_RELATIVE_CANDIDATE: "relative_candidate",
    pb.CONFLICT_KIND_RELATIVE_EXAMINER: "relative_examiner",
    pb.CONFLICT_KIND_OTHER_INTEREST: "other_interest",
}
CONFLICT_KIND = {v: k for k, v in CONFLICT_KIND_IN.items()}


def to_proto_declaration(row: wm.ConflictDeclaration) -> pb.ConflictDeclaration:
    """Relatives are shown as the stored person key, never as an ID number."""
    return pb.ConflictDeclaration(
        dispatch=f"dispatches/{row.dispatch_id}",
        supervisor=f"supervisors/{row.supervisor_id}",
        conflicts=[
            pb.DeclaredConflict(
                kind=CONFLICT_KIND[c["kind"]], counterpart=c["counterpart"], description=c["description"]
            )
            for c in row.conflicts
        ],
        declare_time=timestamp(row.declared_at),
        rule_decisions=row.decisions,
    )


COMPLAINT_STATE = {
    "received": pb.COMPLAINT_STATE_RECEIVED,
    "investigating": pb.COMPLAINT_STATE_INVESTIGATING,
    "closed": pb.COMPLAINT_STATE_CLOSED,
}
COMPLAINT_STATE_IN = {v: k for k, v in COMPLAINT_STATE.items()}


def to_proto_pool_member(m: PoolMember) -> pb.PoolMember:
    return pb.PoolMember(
        supervisor=m.supervisor,
        display_name=m.display_name,
        drawn=m.drawn,
        excluded_by=m.excluded_by,
        recent_dispatch_count=m.recent_dispatch_count,
    )


def to_proto_complaint(row: wm.Complaint) -> pb.Complaint:
    return pb.Complaint(
        name=f"complaints/{row.id}",
        source=row.source,
        subject=row.subject,
        subject_name=row.subject_name,
        content=row.content,
        state=COMPLAINT_STATE[row.state],
        handling=row.handling,
        result=row.result,
        penalty_case=f"cases/{row.case_id}" if row.case_id else "",
        district=row.district,
        received_by=row.received_by,
        receive_time=timestamp(row.received_at),
        close_time=timestamp(row.closed_at),
    )


def to_proto_major_problem(row: wm.MajorProblemReport) -> pb.MajorProblemReport:
    return pb.MajorProblemReport(
        name=f"major-problems/{row.id}",
        dispatch=f"dispatches/{row.dispatch_id}",
        reported_by=f"supervisors/{row.supervisor_id}",
        findings=row.findings,
        suggestions=row.suggestions,
        recipients=row.recipients,
        report_time=timestamp(row.reported_at),
    )
