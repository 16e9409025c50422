"""Complaints (第二十二条(九)) and major-problem reports (第二十二条(十)): rows only."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.registry.storage import workflow_models as wm


def complaint(session: Session, complaint_id: int, *, for_update: bool = False) -> wm.Complaint | None:
    q = sa.select(wm.Complaint).where(wm.Complaint.id == complaint_id)
    return session.execute(q.with_for_update() if for_update else q).scalar_one_or_none()


def complaint_by_request(session: Session, client_request_id: str) -> wm.Complaint | None:
    q = sa.select(wm.Complaint).where(wm.Complaint.client_request_id == client_request_id)
    return session.execute(q).scalar_one_or_none()


def report_by_request(session: Session, client_request_id: str) -> wm.MajorProblemReport | None:
    q = sa.select(wm.MajorProblemReport).where(wm.MajorProblemReport.client_request_id == client_request_id)
    return session.execute(q).scalar_one_or_none()


def add(session: Session, row: wm.Complaint | wm.MajorProblemReport) -> None:
    session.add(row)
    session.flush()


def list_complaints(
    session: Session, *, district: str, state: str, subject: str, query: str, offset: int, limit: int
) -> tuple[list[wm.Complaint], int]:
    """Filtered complaints, newest first, with the total; `query` matches source, subject name or content."""
    q = sa.select(wm.Complaint)
    if district:
        q = q.where(wm.Complaint.district == district)
    if state:
        q = q.where(wm.Complaint.state == state)
    if subject:
        q = q.where(wm.Complaint.subject == subject)
    if query:
        q = q.where(
            sa.or_(
                wm.Complaint.source.contains(query, autoescape=True),
                wm.Complaint.subject_name.contains(query, autoescape=True),
                wm.Complaint.content.contains(query, autoescape=True),
            )
        )
    total = session.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
    rows = session.execute(q.order_by(wm.Complaint.id.desc()).offset(offset).limit(limit)).scalars().all()
    return list(rows), total
