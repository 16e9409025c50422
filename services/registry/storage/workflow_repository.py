"""Queries and writes of the supervision workflow (plain sync functions, the session first; run by Database.read/write).

Reads of registry data (institutions, agencies, supervisors with their appointment, attestations and
badge) are read-only joins on the registry's own tables in the same database: the workflow is part of
the registry process and assembles the facts the rules service needs from them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from common.clock import SHANGHAI
from services.registry.domain.policy import DEFAULT_POLICY as DEFAULT_REGISTRY_POLICY
from services.registry.domain.policy import RegistryPolicy
from services.registry.domain.workflow import reports
from services.registry.domain.workflow.dispatch import Window
from services.registry.domain.workflow.model import (
    ItemAnswer,
    Period,
    PlanIn,
    PlanSessionIn,
    SessionPersonIn,
    SupervisionForm,
)
from services.registry.storage import models as rm
from services.registry.storage import workflow_models as wm
from services.registry.usecases import appointments as registry_appointments

# -- registry facts ------------------------------------------------------------------------------------


@dataclass
class SupervisorView:
    id: int
    full_name: str
    male: bool
    birth_date: dt.date
    id_number: str
    type: str
    level: str
    district_code: str
    institution: str  # institutions/<number> for internals, else ""
    status: str
    term_start: dt.date | None
    term_end: dt.date | None
    training_passed: bool
    training_date: dt.date | None
    attestations: list[tuple[str, str, dt.date]] = field(default_factory=list)  # satisfied items only
    badge_code: str = ""
    appointing_organization: str = ""
    appointment_id: int | None = None
    appointment_status: str = ""

    @property
    def name(self) -> str:
        return f"supervisors/{self.id}"


@dataclass
class InstitutionView:
    name: str
    number: str
    display_name: str
    district_code: str


def institution(session: Session, name: str) -> InstitutionView | None:
    number = name.split("/", 1)[1] if name.startswith("institutions/") else ""
    row = session.execute(sa.select(rm.Institution).where(rm.Institution.number == number)).scalar_one_or_none()
    if row is None:
        return None
    return InstitutionView(f"institutions/{row.number}", row.number, row.display_name, row.district_code)


def agency_names(session: Session) -> dict[str, str]:
    return {code: name for code, name in session.execute(sa.select(rm.Agency.code, rm.Agency.display_name))}


def supervisors(session: Session, ids: list[int]) -> dict[int, SupervisorView]:
    """Supervisors with their current appointment term, satisfied attestations and latest valid badge."""
    if not ids:
        return {}
    rows = session.execute(
        sa.select(rm.Supervisor, rm.Appointment, rm.Institution.number)
        .outerjoin(rm.Appointment, rm.Appointment.id == rm.Supervisor.current_appointment_id)
        .outerjoin(rm.Institution, rm.Institution.id == rm.Supervisor.institution_id)
        .where(rm.Supervisor.id.in_(ids))
    ).all()
    out: dict[int, SupervisorView] = {}
    for sup, appt, inst_number in rows:
        out[sup.id] = SupervisorView(
            id=sup.id,
            full_name=sup.full_name,
            male=sup.male,
            birth_date=sup.birth_date,
            id_number=sup.id_number,
            type=sup.type,
            level=sup.level,
            district_code=sup.district_code,
            institution=f"institutions/{inst_number}" if inst_number else "",
            status=sup.status,
            term_start=appt.term_start if appt else None,
            term_end=appt.term_end if appt else sup.term_end,
            training_passed=bool(sup.training_passed),
            training_date=sup.training_date,
            appointing_organization=appt.organization if appt else "",
            appointment_id=appt.id if appt else None,
            appointment_status=appt.status if appt else "",
        )
    for att in session.execute(
        sa.select(rm.Attestation).where(rm.Attestation.supervisor_id.in_(ids), rm.Attestation.satisfied.is_(True))
    ).scalars():
        out[att.supervisor_id].attestations.append((att.item, att.attested_by, att.attested_date))
    badges = session.execute(
        sa.select(rm.Badge.supervisor_id, rm.Badge.code)
        .where(rm.Badge.supervisor_id.in_(ids), rm.Badge.revoked.is_(False))
        .order_by(rm.Badge.created_at)
    ).all()
    for sup_id, code in badges:  # latest wins
        out[sup_id].badge_code = code
    return out


def pool_ids(
    session: Session, *, type: str, level: str | None, district_code: str | None, institution_number: str | None
) -> list[int]:
    """Active supervisors a dispatching organisation could plausibly send (the rules decide legality)."""
    q = sa.select(rm.Supervisor.id).where(rm.Supervisor.type == type, rm.Supervisor.status == "active")
    if level:
        q = q.where(rm.Supervisor.level == level)
    if district_code:
        q = q.where(rm.Supervisor.district_code == district_code)
    if institution_number:
        q = q.join(rm.Institution, rm.Institution.id == rm.Supervisor.institution_id).where(
            rm.Institution.number == institution_number
        )
    return list(session.execute(q.order_by(rm.Supervisor.id)).scalars())


def supervisor_ids_by_id_number(session: Session, numbers: list[str]) -> dict[str, int]:
    if not numbers:
        return {}
    rows = session.execute(
        sa.select(rm.Supervisor.id_number, rm.Supervisor.id).where(rm.Supervisor.id_number.in_(numbers))
    )
    return {n: i for n, i in rows}


def recent_dispatch_counts(session: Session, ids: list[int], since: dt.date) -> dict[int, int]:
    if not ids:
        return {}
    rows = session.execute(
        sa.select(wm.DispatchMember.supervisor_id, sa.func.count())
        .join(wm.Dispatch, wm.Dispatch.id == wm.DispatchMember.dispatch_id)
        .where(wm.DispatchMember.supervisor_id.in_(ids), wm.Dispatch.start_day >= since, wm.Dispatch.state == "active")
        .group_by(wm.DispatchMember.supervisor_id)
    )
    return {sid: n for sid, n in rows}


# -- plans -----------------------------------------------------------------------------------------------


def plan(session: Session, plan_id: int, *, for_update: bool = False) -> wm.CertPlan | None:
    q = sa.select(wm.CertPlan).where(wm.CertPlan.id == plan_id)
    if for_update:
        q = q.with_for_update()
    return session.execute(q).scalar_one_or_none()


def session_json(s: PlanSessionIn) -> dict[str, Any]:
    """A plan session as stored in CertPlan.sessions (JSON; instants in UTC ISO form)."""

    def person(x: SessionPersonIn) -> dict[str, str]:
        return {"display_name": x.display_name, "id_number": x.id_number, "supervisor": x.supervisor, "role": x.role}

    return {
        "session_id": s.session_id,
        "start": s.start.astimezone(dt.UTC).isoformat(),  # type: ignore[union-attr]
        "end": s.end.astimezone(dt.UTC).isoformat(),  # type: ignore[union-attr]
        "venue": s.venue,
        "examiners": [person(x) for x in s.examiners],
        "staff": [person(x) for x in s.staff],
        "internal_supervisors": list(s.internal_supervisors),
    }


def _plan_days(data: PlanIn) -> tuple[dt.date, dt.date]:
    days = [s.start.astimezone(SHANGHAI).date() for s in data.sessions]  # type: ignore[union-attr]
    return min(days), max(days)


def insert_plan(
    session: Session,
    data: PlanIn,
    *,
    institution: InstitutionView,
    client_request_id: str | None,
    actor: str,
    now: dt.datetime,
) -> wm.CertPlan:
    """A new (validated) evaluation plan, version 1."""
    first_day, last_day = _plan_days(data)
    row = wm.CertPlan(
        institution=institution.name,
        institution_name=institution.display_name,
        title=data.title,
        modes=[m.value for m in data.modes],
        other_mode_text=data.other_mode_text,
        district=data.district,
        candidate_count=data.candidate_count,
        occupation=data.occupation,
        sessions=[session_json(s) for s in data.sessions],
        first_day=first_day,
        last_day=last_day,
        version=1,
        client_request_id=client_request_id,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def update_plan(session: Session, row: wm.CertPlan, data: PlanIn, *, now: dt.datetime) -> wm.CertPlan:
    """Overwrite a (locked) plan with validated data; the version (etag) goes up by one."""
    row.title, row.modes, row.other_mode_text = data.title, [m.value for m in data.modes], data.other_mode_text
    row.district, row.candidate_count, row.occupation = data.district, data.candidate_count, data.occupation
    row.sessions = [session_json(s) for s in data.sessions]
    row.first_day, row.last_day = _plan_days(data)
    row.version += 1
    row.updated_at = now
    session.flush()
    return row


def plan_by_request(session: Session, client_request_id: str) -> wm.CertPlan | None:
    return session.execute(
        sa.select(wm.CertPlan).where(wm.CertPlan.client_request_id == client_request_id)
    ).scalar_one_or_none()


def list_plans(session: Session, *, institution: str, district: str, offset: int, limit: int) -> tuple[list, int]:
    q = sa.select(wm.CertPlan)
    if institution:
        q = q.where(wm.CertPlan.institution == institution)
    if district:
        q = q.where(wm.CertPlan.district == district)
    total = session.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
    rows = session.execute(q.order_by(wm.CertPlan.id.desc()).offset(offset).limit(limit)).scalars().all()
    return list(rows), total


# -- dispatches -----------------------------------------------------------------------------------------


def dispatch(session: Session, dispatch_id: int, *, for_update: bool = False) -> wm.Dispatch | None:
    q = sa.select(wm.Dispatch).where(wm.Dispatch.id == dispatch_id)
    if for_update:
        q = q.with_for_update()
    return session.execute(q).scalar_one_or_none()


def _member(dispatch_id: int, v: SupervisorView, now: dt.datetime) -> wm.DispatchMember:
    return wm.DispatchMember(
        dispatch_id=dispatch_id,
        supervisor_id=v.id,
        display_name=v.full_name,
        badge_code=v.badge_code,
        state="active",
        added_at=now,
    )


def insert_dispatch(
    session: Session,
    plan_row: wm.CertPlan,
    *,
    session_ids: list[str],
    dispatching_agency: str,
    scope: str,
    form: str,
    selection: str,
    seed: str,
    advisory_findings: list[dict[str, str]],
    rule_set_version: str,
    decisions: list[str],
    window: Window,
    record_due: dt.date,
    feedback_due: dt.date,
    team: list[SupervisorView],
    client_request_id: str | None,
    actor: str,
    now: dt.datetime,
) -> tuple[wm.Dispatch, list[wm.DispatchMember]]:
    """A new active dispatch (委派, 第十四条) of a checked team, with its members in team order."""
    row = wm.Dispatch(
        plan_id=plan_row.id,
        session_ids=session_ids,
        dispatching_agency=dispatching_agency,
        scope=scope,
        form=form,
        selection=selection,
        seed=seed,
        advisory_findings=advisory_findings,
        rule_set_version=rule_set_version,
        decisions=decisions,
        district=plan_row.district,
        window_start=window.start,
        window_end=window.end,
        start_day=window.start_day,
        end_day=window.end_day,
        record_due=record_due,
        feedback_due=feedback_due,
        state="active",
        client_request_id=client_request_id,
        created_by=actor,
        created_at=now,
        created_on=now.date(),
        updated_at=now,
    )
    session.add(row)
    session.flush()
    members = [_member(row.id, v, now) for v in team]
    session.add_all(members)
    session.flush()
    return row, members


def replace_member(
    session: Session,
    row: wm.Dispatch,
    leaving: wm.DispatchMember,
    joining: SupervisorView,
    *,
    reason: str,
    advisory_findings: list[dict[str, str]],
    rule_set_version: str,
    decisions: list[str],
    now: dt.datetime,
) -> list[wm.DispatchMember]:
    """Replace an active member of a (locked) dispatch; the re-checked team's findings and decisions are kept.
    Returns the dispatch's members afterwards."""
    session.add(_member(row.id, joining, now))
    session.flush()
    leaving.state, leaving.replaced_by, leaving.replace_reason = "replaced", joining.id, reason
    row.advisory_findings, row.rule_set_version = advisory_findings, rule_set_version
    row.decisions = [*row.decisions, *decisions]
    row.updated_at = now
    session.flush()
    return members(session, [row.id])[row.id]


def cancel_dispatch(session: Session, row: wm.Dispatch, *, reason: str, now: dt.datetime) -> None:
    """Cancel a (locked) dispatch, keeping the reason."""
    row.state, row.cancel_reason, row.updated_at = "cancelled", reason, now
    session.flush()


def dispatch_by_request(session: Session, client_request_id: str) -> wm.Dispatch | None:
    return session.execute(
        sa.select(wm.Dispatch).where(wm.Dispatch.client_request_id == client_request_id)
    ).scalar_one_or_none()


def members(session: Session, dispatch_ids: list[int]) -> dict[int, list[wm.DispatchMember]]:
    out: dict[int, list[wm.DispatchMember]] = {i: [] for i in dispatch_ids}
    if dispatch_ids:
        for m in session.execute(
            sa.select(wm.DispatchMember)
            .where(wm.DispatchMember.dispatch_id.in_(dispatch_ids))
            .order_by(wm.DispatchMember.id)
        ).scalars():
            out[m.dispatch_id].append(m)
    return out


def plans_by_ids(session: Session, ids: list[int]) -> dict[int, wm.CertPlan]:
    if not ids:
        return {}
    return {p.id: p for p in session.execute(sa.select(wm.CertPlan).where(wm.CertPlan.id.in_(ids))).scalars()}


def record_dispatch_ids(session: Session, dispatch_ids: list[int]) -> set[int]:
    if not dispatch_ids:
        return set()
    return set(
        session.execute(
            sa.select(wm.SupervisionRecord.dispatch_id).where(wm.SupervisionRecord.dispatch_id.in_(dispatch_ids))
        ).scalars()
    )


def feedback_pairs(session: Session, dispatch_ids: list[int]) -> set[tuple[int, int]]:
    if not dispatch_ids:
        return set()
    return set(
        session.execute(
            sa.select(wm.SupervisorFeedback.dispatch_id, wm.SupervisorFeedback.supervisor_id).where(
                wm.SupervisorFeedback.dispatch_id.in_(dispatch_ids)
            )
        ).all()
    )


def list_dispatches(
    session: Session,
    *,
    day: dt.date | None,
    agency: str,
    plan_id: int | None,
    include_cancelled: bool,
    due_before: dt.date | None,
) -> list[wm.Dispatch]:
    """Filtered dispatches, earliest supervision first. `due_before` keeps those whose due dates passed
    (the caller then checks what is missing)."""
    q = sa.select(wm.Dispatch)
    if day is not None:
        q = q.where(wm.Dispatch.start_day <= day, wm.Dispatch.end_day >= day)
    if agency:
        q = q.where(wm.Dispatch.dispatching_agency == agency)
    if plan_id is not None:
        q = q.where(wm.Dispatch.plan_id == plan_id)
    if not include_cancelled:
        q = q.where(wm.Dispatch.state == "active")
    if due_before is not None:
        q = q.where(sa.or_(wm.Dispatch.record_due < due_before, wm.Dispatch.feedback_due < due_before))
    return list(session.execute(q.order_by(wm.Dispatch.window_start, wm.Dispatch.id)).scalars())


# -- records and feedback -------------------------------------------------------------------------------


def insert_record(
    session: Session,
    *,
    dispatch_id: int,
    district: str,
    form: str,
    first_submitted_on: dt.date,
    late: bool,
    no_items: list[int],
) -> wm.SupervisionRecord:
    """The Annex 3 record of a dispatch (第二十三条), at version 1; its versions hold the answers."""
    rec = wm.SupervisionRecord(
        dispatch_id=dispatch_id,
        current_version=1,
        district=district,
        form=form,
        first_submitted_on=first_submitted_on,
        late=late,
        no_items=no_items,
    )
    session.add(rec)
    session.flush()
    return rec


def insert_record_version(
    session: Session,
    *,
    record_id: int,
    version: int,
    submitter: int,
    answers: list[ItemAnswer],
    inp: dict[str, Any],
    findings: list,
    opened: dict[int, str],
    now: dt.datetime,
    due: dt.date,
    lateness: Any,
    reason: str,
    client_request_id: str,
    actor: str,
) -> wm.SupervisionRecordVersion:
    """One submitted or corrected version of a record: answers, signatures, findings (D11) with the cases they
    opened (D14), lateness against the due date (第二十三条, D5). Versions are never changed afterwards."""
    ver = wm.SupervisionRecordVersion(
        record_id=record_id,
        version=version,
        submitted_by=submitter,
        answers=[
            {"item_number": a.item_number, "answer": a.answer.value, "remark": a.remark.strip()}  # type: ignore[union-attr]
            for a in answers
        ],
        problems=inp["problems"],
        signatures=inp["signatures"],
        head_signature=inp["head"],
        sign_date=inp["sign_date"],
        findings=[
            {
                "item_number": f.item_number,
                "item_text": f.item_text,
                "remark": f.remark,
                "opened_case": opened.get(f.item_number, ""),
            }
            for f in findings
        ],
        submitted_at=now,
        due_date=due,
        late_working_days=lateness.working_days,
        late_calendar_days=lateness.calendar_days,
        correction_reason=reason,
        client_request_id=client_request_id,
        actor=actor,
    )
    session.add(ver)
    session.flush()
    return ver


def set_current_version(session: Session, rec: wm.SupervisionRecord, version: int, *, no_items: list[int]) -> None:
    """A corrected (locked) record points at its new version and that version's 否 items."""
    rec.current_version, rec.no_items = version, no_items
    session.flush()


def record_version_by_request(session: Session, client_request_id: str) -> wm.SupervisionRecordVersion | None:
    return session.execute(
        sa.select(wm.SupervisionRecordVersion).where(wm.SupervisionRecordVersion.client_request_id == client_request_id)
    ).scalar_one_or_none()


def record(session: Session, record_id: int, *, for_update: bool = False) -> wm.SupervisionRecord | None:
    q = sa.select(wm.SupervisionRecord).where(wm.SupervisionRecord.id == record_id)
    if for_update:
        q = q.with_for_update()
    return session.execute(q).scalar_one_or_none()


def record_of_dispatch(session: Session, dispatch_id: int) -> wm.SupervisionRecord | None:
    return session.execute(
        sa.select(wm.SupervisionRecord).where(wm.SupervisionRecord.dispatch_id == dispatch_id)
    ).scalar_one_or_none()


def record_versions(session: Session, record_id: int) -> list[wm.SupervisionRecordVersion]:
    return list(
        session.execute(
            sa.select(wm.SupervisionRecordVersion)
            .where(wm.SupervisionRecordVersion.record_id == record_id)
            .order_by(wm.SupervisionRecordVersion.version)
        ).scalars()
    )


def record_version(session: Session, record_id: int, version: int) -> wm.SupervisionRecordVersion | None:
    return session.execute(
        sa.select(wm.SupervisionRecordVersion).where(
            wm.SupervisionRecordVersion.record_id == record_id, wm.SupervisionRecordVersion.version == version
        )
    ).scalar_one_or_none()


def insert_feedback(
    session: Session,
    d: wm.Dispatch,
    member: wm.DispatchMember,
    *,
    entry_time: dt.datetime,
    exit_time: dt.datetime,
    badge_worn: str,
    duties_performed: str,
    integrity_kept: str,
    comments: str,
    signed_by: str,
    now: dt.datetime,
    today: dt.date,
    lateness: Any,
    client_request_id: str,
    actor: str,
) -> wm.SupervisorFeedback:
    """The institution's Annex 4 feedback on one external supervisor of a dispatch (第二十三条, D12)."""
    row = wm.SupervisorFeedback(
        dispatch_id=d.id,
        supervisor_id=member.supervisor_id,
        supervisor_name=member.display_name,
        badge_code=member.badge_code,
        district=d.district,
        entry_time=entry_time,
        exit_time=exit_time,
        badge_worn=badge_worn,
        duties_performed=duties_performed,
        integrity_kept=integrity_kept,
        comments=comments,
        signed_by=signed_by,
        submitted_at=now,
        submitted_on=today,
        due_date=d.feedback_due,
        late_working_days=lateness.working_days,
        late_calendar_days=lateness.calendar_days,
        client_request_id=client_request_id,
        actor=actor,
    )
    session.add(row)
    session.flush()
    return row


def link_review_case(session: Session, row: wm.SupervisorFeedback, case_row: wm.PenaltyCase) -> None:
    """The 第二十七条 review a feedback's "no" answer opened (D12)."""
    row.review_case_id = case_row.id
    session.flush()


def feedback_by_request(session: Session, client_request_id: str) -> wm.SupervisorFeedback | None:
    return session.execute(
        sa.select(wm.SupervisorFeedback).where(wm.SupervisorFeedback.client_request_id == client_request_id)
    ).scalar_one_or_none()


def feedback(session: Session, feedback_id: int) -> wm.SupervisorFeedback | None:
    return session.get(wm.SupervisorFeedback, feedback_id)


def feedback_of_dispatch(session: Session, dispatch_id: int) -> list[wm.SupervisorFeedback]:
    return list(
        session.execute(
            sa.select(wm.SupervisorFeedback)
            .where(wm.SupervisorFeedback.dispatch_id == dispatch_id)
            .order_by(wm.SupervisorFeedback.id)
        ).scalars()
    )


# -- cases ----------------------------------------------------------------------------------------------


def case(session: Session, case_id: int, *, for_update: bool = False) -> wm.PenaltyCase | None:
    q = sa.select(wm.PenaltyCase).where(wm.PenaltyCase.id == case_id)
    if for_update:
        q = q.with_for_update()
    return session.execute(q).scalar_one_or_none()


def insert_case(
    session: Session,
    *,
    subject_kind: str,
    subject: str,
    subject_name: str,
    district: str,
    triggers: list[str],
    origin: str,
    source: str,
    item_numbers: list[int],
    description: str,
    state: str,
    recommendation: dict[str, Any],
    plan_id: int | None,
    dispatch_id: int | None,
    opened_by: str,
    client_request_id: str | None,
    now: dt.datetime,
) -> wm.PenaltyCase:
    """A new penalty case (第二十六条 / 第二十七条) with the rules service's recommendation (D13)."""
    row = wm.PenaltyCase(
        subject_kind=subject_kind,
        subject=subject,
        subject_name=subject_name,
        district=district,
        triggers=triggers,
        origin=origin,
        source=source,
        item_numbers=item_numbers,
        description=description,
        state=state,
        recommendation=recommendation,
        plan_id=plan_id,
        dispatch_id=dispatch_id,
        opened_by=opened_by,
        opened_at=now,
        opened_on=now.date(),
        client_request_id=client_request_id,
        immediate_report_raised=False,
    )
    session.add(row)
    session.flush()
    return row


def insert_case_decision(
    session: Session,
    row: wm.PenaltyCase,
    *,
    state: str,
    rung: str,
    official: str,
    official_org: str,
    note: str,
    correction_deadline: dt.date | None,
    now: dt.datetime,
    today: dt.date,
) -> wm.CaseDecision:
    """An official's decision on a (locked) case (D13) and the case's resulting state."""
    d = wm.CaseDecision(
        case_id=row.id,
        rung=rung,
        official=official,
        official_org=official_org,
        note=note,
        correction_deadline=correction_deadline,
        decided_at=now,
        decided_on=today,
    )
    session.add(d)
    row.state, row.correction_deadline = state, correction_deadline
    session.flush()
    return d


def record_correction(session: Session, row: wm.PenaltyCase, *, state: str, note: str, now: dt.datetime) -> None:
    """The correction of a (locked) case, recorded before its deadline (第二十六条 责令改正)."""
    row.state, row.corrected_at, row.correction_note = state, now, note
    session.flush()


def escalate_case(
    session: Session, row: wm.PenaltyCase, *, state: str, recommendation: dict[str, Any]
) -> dt.date | None:
    """D13 拒不改正: a (locked) case whose correction deadline passed climbs one rung with a new
    recommendation; returns the missed deadline."""
    missed = row.correction_deadline
    row.state, row.correction_deadline = state, None
    row.escalation_count += 1
    row.recommendation = recommendation
    session.flush()
    return missed


def mark_immediate_report(session: Session, row: wm.PenaltyCase) -> bool:
    """Flag a case as reported at once (第二十四条); False when it already was (report once)."""
    if row.immediate_report_raised:
        return False
    row.immediate_report_raised = True
    session.flush()
    return True


def case_by_request(session: Session, client_request_id: str) -> wm.PenaltyCase | None:
    return session.execute(
        sa.select(wm.PenaltyCase).where(wm.PenaltyCase.client_request_id == client_request_id)
    ).scalar_one_or_none()


def decisions(session: Session, case_ids: list[int]) -> dict[int, list[wm.CaseDecision]]:
    out: dict[int, list[wm.CaseDecision]] = {i: [] for i in case_ids}
    if case_ids:
        for d in session.execute(
            sa.select(wm.CaseDecision).where(wm.CaseDecision.case_id.in_(case_ids)).order_by(wm.CaseDecision.id)
        ).scalars():
            out[d.case_id].append(d)
    return out


def cases_of_subject(session: Session, subject: str) -> list[wm.PenaltyCase]:
    return list(
        session.execute(
            sa.select(wm.PenaltyCase).where(wm.PenaltyCase.subject == subject).order_by(wm.PenaltyCase.id)
        ).scalars()
    )


def case_for_source_item(session: Session, source: str, item_number: int) -> wm.PenaltyCase | None:
    for c in session.execute(sa.select(wm.PenaltyCase).where(wm.PenaltyCase.source == source)).scalars():
        if item_number in (c.item_numbers or []):
            return c
    return None


def list_cases(
    session: Session, *, subject: str, state: str, district: str, plan_id: int | None, offset: int, limit: int
) -> tuple[list[wm.PenaltyCase], int]:
    q = sa.select(wm.PenaltyCase)
    if subject:
        q = q.where(wm.PenaltyCase.subject == subject)
    if state:
        q = q.where(wm.PenaltyCase.state == state)
    if district:
        q = q.where(wm.PenaltyCase.district == district)
    if plan_id is not None:
        q = q.where(wm.PenaltyCase.plan_id == plan_id)
    total = session.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
    rows = session.execute(q.order_by(wm.PenaltyCase.id.desc()).offset(offset).limit(limit)).scalars().all()
    return list(rows), total


def cases_past_correction_deadline(session: Session, today: dt.date) -> list[int]:
    return list(
        session.execute(
            sa.select(wm.PenaltyCase.id).where(
                wm.PenaltyCase.state == "awaiting_correction", wm.PenaltyCase.correction_deadline < today
            )
        ).scalars()
    )


# -- periods and reports --------------------------------------------------------------------------------


def closed_period(session: Session, key: str) -> wm.ClosedPeriod | None:
    return session.get(wm.ClosedPeriod, key)


def last_closed_period(session: Session) -> wm.ClosedPeriod | None:
    return session.execute(sa.select(wm.ClosedPeriod).order_by(wm.ClosedPeriod.period_start.desc()).limit(1)).scalar()


def reports_of_period(session: Session, key: str) -> list[wm.DistrictReport]:
    return list(
        session.execute(
            sa.select(wm.DistrictReport).where(wm.DistrictReport.period_key == key).order_by(wm.DistrictReport.id)
        ).scalars()
    )


def report(session: Session, key: str, district: str) -> wm.DistrictReport | None:
    return session.execute(
        sa.select(wm.DistrictReport).where(wm.DistrictReport.period_key == key, wm.DistrictReport.district == district)
    ).scalar_one_or_none()


def earliest_activity(session: Session) -> dt.date | None:
    firsts = [
        session.execute(sa.select(sa.func.min(wm.Dispatch.created_on))).scalar(),
        session.execute(sa.select(sa.func.min(wm.SupervisionRecord.first_submitted_on))).scalar(),
        session.execute(sa.select(sa.func.min(wm.PenaltyCase.opened_on))).scalar(),
    ]
    firsts = [d for d in firsts if d is not None]
    return min(firsts) if firsts else None


def period_facts(session: Session, start: dt.date, end: dt.date) -> dict[str, list]:
    """Rows touching a period, for report aggregation."""
    records = (
        session.execute(
            sa.select(wm.SupervisionRecord).where(wm.SupervisionRecord.first_submitted_on.between(start, end))
        )
        .scalars()
        .all()
    )
    fbs = (
        session.execute(sa.select(wm.SupervisorFeedback).where(wm.SupervisorFeedback.submitted_on.between(start, end)))
        .scalars()
        .all()
    )
    decided_case_ids = set(
        session.execute(
            sa.select(wm.CaseDecision.case_id).where(wm.CaseDecision.decided_on.between(start, end))
        ).scalars()
    )
    cases_q = sa.select(wm.PenaltyCase).where(
        sa.or_(wm.PenaltyCase.opened_on.between(start, end), wm.PenaltyCase.id.in_(decided_case_ids or {-1}))
    )
    case_rows = session.execute(cases_q).scalars().all()
    decs = decisions(session, [c.id for c in case_rows])
    dispatches = session.execute(
        sa.select(wm.Dispatch.district, wm.Dispatch.created_on).where(wm.Dispatch.created_on.between(start, end))
    ).all()
    return {
        "records": list(records),
        "feedback": list(fbs),
        "cases": [(c, decs[c.id]) for c in case_rows],
        "dispatches": list(dispatches),
    }


def period_report_facts(session: Session, period: Period) -> dict[str, list]:
    """The half-month period's facts (D10, 第二十四条) as the report aggregation's inputs."""
    facts = period_facts(session, period.start, period.end)
    return {
        "records": [
            reports.RecordFact(
                f"records/{r.id}", r.district, SupervisionForm(r.form), r.first_submitted_on, r.late, tuple(r.no_items)
            )
            for r in facts["records"]
        ],
        "feedback": [
            reports.FeedbackFact(f.district, f.submitted_on, f.late_calendar_days > 0) for f in facts["feedback"]
        ],
        "cases": [
            reports.CaseFact(f"cases/{c.id}", c.district, c.opened_on, tuple(d.decided_on for d in decs))
            for c, decs in facts["cases"]
        ],
        "dispatches": [reports.DispatchFact(district, created_on) for district, created_on in facts["dispatches"]],
    }


def insert_closed_period(
    session: Session, period: Period, figures: list, *, closed_by: str, now: dt.datetime
) -> list[wm.DistrictReport]:
    """Mark a period closed and keep one district report per district's figures (D10, 第二十四条)."""
    key = period.key
    session.add(wm.ClosedPeriod(period_key=key, period_start=period.start, closed_at=now, closed_by=closed_by))
    out = []
    for fig in figures:
        row = wm.DistrictReport(
            period_key=key,
            district=fig.district,
            closed_at=now,
            figures={
                "district_name": fig.district_name,
                "period_start": period.start.isoformat(),
                "period_end": period.end.isoformat(),
                "supervisions_by_form": {k.value: v for k, v in fig.supervisions_by_form.items()},
                "no_counts": [[form.value, n, text, count] for form, n, text, count in fig.no_counts],
                "late_records": fig.late_records,
                "late_feedback": fig.late_feedback,
                "feedback_count": fig.feedback_count,
                "cases_opened": fig.cases_opened,
                "cases_decided": fig.cases_decided,
                "dispatches_created": fig.dispatches_created,
                "records": fig.records,
                "cases": fig.cases,
            },
        )
        session.add(row)
        session.flush()
        out.append(row)
    return out


def apply_supervisor_sanction(
    session: Session,
    *,
    supervisor_id: int,
    revoke: bool,
    reason: str,
    decided_by: str,
    case_reference: str,
    now: dt.datetime,
    policy: RegistryPolicy = DEFAULT_REGISTRY_POLICY,
) -> int | None:
    """第二十七条 暂停督导工作 (`revoke=False`) / 取消外督员资格 (`revoke=True`) on the supervisor's current
    appointment, inside the caller's transaction (the case decision's), through the registry's own repository
    functions — so the decision, its outbox event and the appointment change commit or roll back together.

    Idempotent: a suspension applies to an active appointment only, a revocation to one not yet revoked;
    otherwise nothing changes. Returns the id of the appointment changed, or None."""
    sup = session.get(rm.Supervisor, supervisor_id)
    if sup is None or sup.current_appointment_id is None:
        return None
    appt = session.get(rm.Appointment, sup.current_appointment_id, with_for_update=True)
    if appt is None:
        return None
    kwargs = dict(
        appointment_id=appt.id,
        reason=reason,
        article="第二十七条",
        decided_by=decided_by,
        case_reference=case_reference,
        now=now,
    )
    if revoke and appt.status != "revoked":
        registry_appointments.revoke(session, **kwargs)  # type: ignore[arg-type]
        return appt.id
    if not revoke and appt.status == "active":
        registry_appointments.suspend(session, **kwargs)  # type: ignore[arg-type]
        return appt.id
    return None
