"""Penalty cases of the supervision workflow (第二十六条, 第二十七条, D13/D14) and the 第二十七条 sanction on the
supervisor's appointment, applied in the case decision's transaction (plain sync functions, the session first)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.registry.storage import workflow_models as wm

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


def cases_of_plans(session: Session, plan_ids: list[int]) -> dict[int, list[wm.PenaltyCase]]:
    """Plan id -> the cases about it, newest first."""
    out: dict[int, list[wm.PenaltyCase]] = {i: [] for i in plan_ids}
    if plan_ids:
        q = sa.select(wm.PenaltyCase).where(wm.PenaltyCase.plan_id.in_(plan_ids)).order_by(wm.PenaltyCase.id.desc())
        for c in session.execute(q).scalars():
            out[cast(int, c.plan_id)].append(c)  # not NULL: picked by plan id
    return out


def cases_past_correction_deadline(session: Session, today: dt.date) -> list[int]:
    return list(
        session.execute(
            sa.select(wm.PenaltyCase.id).where(
                wm.PenaltyCase.state == "awaiting_correction", wm.PenaltyCase.correction_deadline < today
            )
        ).scalars()
    )
