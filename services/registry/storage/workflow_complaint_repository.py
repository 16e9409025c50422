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
