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
from sqlalchemy.orm import Session, aliased

from common.clock import SHANGHAI
from services.registry.domain.supervisors import Affiliation, Training
from services.registry.domain.workflow.dispatch import Window
from services.registry.domain.workflow.model import (
    ItemAnswer,
    PlanIn,
    PlanSessionIn,
    RecordInput,
    SessionPersonIn,
)
from services.registry.storage import models as rm
from services.registry.storage import repository as registry_repo
from services.registry.storage import workflow_models as wm

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
    attestations: list[tuple[str, str, dt.date]] = field(default_factory=list)  # satisfied items only
    trainings: list[Training] = field(default_factory=list)  # 第十条, oldest first
    affiliations: list[Affiliation] = field(default_factory=list)  # 第十六条, dated
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
            appointing_organization=appt.organization if appt else "",
            appointment_id=appt.id if appt else None,
            appointment_status=appt.status if appt else "",
        )
    for att in session.execute(
        sa.select(rm.Attestation).where(rm.Attestation.supervisor_id.in_(ids), rm.Attestation.satisfied.is_(True))
    ).scalars():
        out[att.supervisor_id].attestations.append((att.item, att.attested_by, att.attested_date))
    for row in registry_repo.training_rows(session, supervisor_ids=ids):
        out[row.supervisor_id].trainings.append(registry_repo.as_training(row))
    for sup_id, affiliations in registry_repo.affiliations_of(session, supervisor_ids=ids).items():
        out[sup_id].affiliations = affiliations
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
        "start": s.start.astimezone(dt.UTC).isoformat(),  # type: ignore[union-attr]  # validate_plan refused no time
        "end": s.end.astimezone(dt.UTC).isoformat(),  # type: ignore[union-attr]  # validate_plan refused no time
        "venue": s.venue,
        "examiners": [person(x) for x in s.examiners],
        "staff": [person(x) for x in s.staff],
        "internal_supervisors": list(s.internal_supervisors),
    }


def _plan_days(data: PlanIn) -> tuple[dt.date, dt.date]:
    days = [s.start.astimezone(SHANGHAI).date() for s in data.sessions]  # type: ignore[union-attr]  # validated plan
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
        modes=[m.value for m in data.modes if m is not None],  # validate_plan refuses an unknown mode
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
    row.title, row.modes, row.other_mode_text = (
        data.title,
        [m.value for m in data.modes if m is not None],
        data.other_mode_text,
    )
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


def list_plans(
    session: Session, *, institution: str, district: str, supervisor_id: int | None, offset: int, limit: int
) -> tuple[list, int]:
    q = sa.select(wm.CertPlan)
    if supervisor_id is not None:  # the plans a supervisor is dispatched to
        member = wm.DispatchMember
        dispatched = sa.select(wm.Dispatch.plan_id).join(member, member.dispatch_id == wm.Dispatch.id)
        q = q.where(wm.CertPlan.id.in_(dispatched.where(member.supervisor_id == supervisor_id)))
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
        ).tuples()
    )


def list_dispatches(
    session: Session,
    *,
    day: dt.date | None,
    agency: str,
    plan_id: int | None,
    include_cancelled: bool,
    due_before: dt.date | None,
    member_id: int | None = None,
) -> list[wm.Dispatch]:
    """Filtered dispatches, earliest supervision first. `due_before` keeps those whose due dates passed
    (the caller then checks what is missing); `member_id` those whose team has (or had) that supervisor."""
    q = sa.select(wm.Dispatch)
    if member_id is not None:
        team = sa.select(wm.DispatchMember.dispatch_id).where(wm.DispatchMember.supervisor_id == member_id)
        q = q.where(wm.Dispatch.id.in_(team))
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


def dispatches_of_plans(session: Session, plan_ids: list[int]) -> list[wm.Dispatch]:
    """Every dispatch of these plans, cancelled ones included, earliest supervision first."""
    if not plan_ids:
        return []
    q = sa.select(wm.Dispatch).where(wm.Dispatch.plan_id.in_(plan_ids))
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
    inp: RecordInput,
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
            # every answer is set: validate_record refused unanswered items
            {"item_number": a.item_number, "answer": a.answer.value, "remark": a.remark.strip()}  # type: ignore[union-attr]
            for a in answers
        ],
        problems=inp.problems,
        signatures=inp.signatures,
        head_signature=inp.head_signature,
        sign_date=inp.sign_date,
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


def current_records(
    session: Session, dispatch_ids: list[int]
) -> dict[int, tuple[wm.SupervisionRecord, wm.SupervisionRecordVersion | None]]:
    """Dispatch id -> its record with the current version (None if that version row is missing), one query."""
    if not dispatch_ids:
        return {}
    version = aliased(wm.SupervisionRecordVersion)
    q = (
        sa.select(wm.SupervisionRecord, version)
        .outerjoin(
            version,
            sa.and_(
                version.record_id == wm.SupervisionRecord.id, version.version == wm.SupervisionRecord.current_version
            ),
        )
        .where(wm.SupervisionRecord.dispatch_id.in_(dispatch_ids))
    )
    return {rec.dispatch_id: (rec, ver) for rec, ver in session.execute(q).tuples()}


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


def feedback_of_dispatches(session: Session, dispatch_ids: list[int]) -> dict[int, list[wm.SupervisorFeedback]]:
    out: dict[int, list[wm.SupervisorFeedback]] = {i: [] for i in dispatch_ids}
    if dispatch_ids:
        for f in session.execute(
            sa.select(wm.SupervisorFeedback)
            .where(wm.SupervisorFeedback.dispatch_id.in_(dispatch_ids))
            .order_by(wm.SupervisorFeedback.id)
        ).scalars():
            out[f.dispatch_id].append(f)
    return out


# -- test clock ------------------------------------------------------------------------------------------


def clock_fixed_at(session: Session) -> dt.datetime | None:
    row = session.get(wm.WorkflowClockSetting, 1)
    return row.fixed_at if row is not None else None


def set_clock(session: Session, *, fixed_at: dt.datetime | None, now: dt.datetime) -> None:
    row = session.get(wm.WorkflowClockSetting, 1, with_for_update=True)
    if row is None:
        session.add(wm.WorkflowClockSetting(id=1, fixed_at=fixed_at, updated_at=now))
    else:
        row.fixed_at, row.updated_at = fixed_at, now


def declaration(session: Session, dispatch_id: int, supervisor_id: int) -> wm.ConflictDeclaration | None:
    q = sa.select(wm.ConflictDeclaration).where(
        wm.ConflictDeclaration.dispatch_id == dispatch_id, wm.ConflictDeclaration.supervisor_id == supervisor_id
    )
    return session.execute(q).scalar_one_or_none()


def save_declaration(
    session: Session, dispatch_id: int, supervisor_id: int, conflicts: list[dict[str, str]], decisions: list[str],
    now: dt.datetime,
) -> wm.ConflictDeclaration:  # fmt: skip
    """Insert or replace the supervisor's declaration on the dispatch (a later one supersedes)."""
    row = declaration(session, dispatch_id, supervisor_id)
    if row is None:
        row = wm.ConflictDeclaration(dispatch_id=dispatch_id, supervisor_id=supervisor_id)
        session.add(row)
    row.conflicts, row.decisions, row.declared_at = conflicts, decisions, now
    session.flush()
    return row


def delete_declaration(session: Session, dispatch_id: int, supervisor_id: int) -> None:
    session.execute(
        sa.delete(wm.ConflictDeclaration).where(
            wm.ConflictDeclaration.dispatch_id == dispatch_id, wm.ConflictDeclaration.supervisor_id == supervisor_id
        )
    )
