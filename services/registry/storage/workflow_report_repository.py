"""Half-month reporting periods and district reports of the supervision workflow (第二十四条, D10): the
facts a period's reports aggregate and the closed-period rows (plain sync functions, the session first)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.registry.domain.workflow import reports
from services.registry.domain.workflow.model import Period, SupervisionForm
from services.registry.storage import workflow_models as wm
from services.registry.storage.workflow_case_repository import decisions

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
    known = [d for d in firsts if d is not None]
    return min(known) if known else None


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
