"""Use cases of half-month reporting periods (第二十四条, D10): close a period once (district reports, each with
its period.closed event, in one transaction), close every ended period (the sweep), read a report."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bjsv.registry.v1 import supervision_events_pb2 as ev
from common.auth import scope
from common.errors import FailedPrecondition, NotFound, PreconditionViolation
from common.events import record_event
from services.registry.domain.workflow import periods as period_rules
from services.registry.domain.workflow import reports
from services.registry.domain.workflow.model import Period
from services.registry.storage import workflow_models as wm
from services.registry.storage import workflow_report_repository as reports_repo
from services.registry.workflow import events, owners
from services.registry.workflow.context import Workflow, caller_org
from services.registry.workflow.convert import to_proto_report
from services.registry.workflow.results import ClosedReports


async def first_half_last_day(wf: Workflow, day: dt.date) -> int:
    """D10: the last day of the first half-month, from the rule set in force on `day`."""
    return int(await wf.parameters.get("period.first_half_last_day", day))


def _close_tx(session: Session, wf: Workflow, period: Period, include_empty: bool, actor: str) -> ClosedReports:
    if reports_repo.closed_period(session, period.key) is not None:
        return ClosedReports(reports_repo.reports_of_period(session, period.key), False)
    facts = reports_repo.period_report_facts(session, period)
    figures = reports.aggregate(period, **facts, include_empty=include_empty)
    rows = reports_repo.insert_closed_period(session, period, figures, closed_by=actor, now=wf.clock.now())
    for row in rows:
        proto = to_proto_report(row, wf.policy.city_centre)
        record_event(
            session,
            type=events.PERIOD_CLOSED,
            subject=proto.name,
            payload=ev.PeriodClosed(report=proto, recipients=events.city_and_district(session, row.district)),
        )
    return ClosedReports(rows, True)


async def _close(wf: Workflow, period: Period, include_empty: bool) -> ClosedReports:
    """Close once: a concurrent close (sweep task, another replica) loses on the closed_period key."""
    try:
        return await wf.db.write(_close_tx, wf, period, include_empty, caller_org())
    except sa.exc.IntegrityError:
        return ClosedReports(await wf.db.read(reports_repo.reports_of_period, period.key), False)


async def close(wf: Workflow, day: dt.date, include_empty: bool) -> ClosedReports:
    period = period_rules.period_of(day, await first_half_last_day(wf, day))
    if not period_rules.has_ended(period, wf.today()):
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
    closed = await _close(wf, period, include_empty)
    # A period closes city-wide, once (D10); a district agency is answered with its own district's report.
    own = [r for r in closed.reports if scope.allows(scope.Owner.of(f"agencies/{r.district}"))]
    return ClosedReports(own, closed.newly_closed)


async def close_ended_periods(wf: Workflow) -> list[str]:
    first_day = await wf.db.read(reports_repo.earliest_activity)
    if first_day is None:
        return []
    names = []
    split = await first_half_last_day(wf, wf.today())
    first = period_rules.period_of(first_day, split)
    for period in period_rules.ended_periods(None, wf.today(), first=first, split=split):
        if await wf.db.read(reports_repo.closed_period, period.key) is None:
            closed = await _close(wf, period, False)
            if closed.newly_closed:
                names += [f"reports/{r.district}/{r.period_key}" for r in closed.reports]
    return names


async def get_report(wf: Workflow, district: str, key: str, name: str) -> wm.DistrictReport:
    owners.district(district, name)
    row = await wf.db.read(reports_repo.report, key, district)
    if row is None:
        raise NotFound(name)
    return row
