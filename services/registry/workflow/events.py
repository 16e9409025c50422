"""Events the workflow publishes (envelope `type`, subject bjsv.registry.<type>; payloads in
proto/bjsv/registry/v1/supervision_events.proto) and who each one is addressed to. They are written to the
outbox by the use cases, in the transaction of the change they describe."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bjsv.registry.v1 import supervision_events_pb2 as ev
from services.registry.domain.districts import CITY_CENTRE_NAME, CITY_CODE
from services.registry.storage import workflow_repository as repo
from services.registry.workflow.results import DispatchView

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
COMPLAINT_RECEIVED = "complaint.received"  # 第二十二条(九)
COMPLAINT_HANDLED = "complaint.handled"
MAJOR_PROBLEM_REPORTED = "major_problem.reported"  # 第二十二条(十)
# The test clock was set (payload GetSupervisionClockResponse): notify follows it, one clock for both.
CLOCK_SET = "clock.set"


def agency_recipient(session: Session, org: str, role: str) -> ev.Recipient:
    if org.startswith("agencies/"):
        code = org.split("/", 1)[1]
        names = repo.agency_names(session)
        return ev.Recipient(
            party=org, display_name=names.get(code, CITY_CENTRE_NAME if code == CITY_CODE else ""), role=role
        )
    inst = repo.institution(session, org)
    return ev.Recipient(party=org, display_name=inst.display_name if inst else "", role=role)


def city_and_district(session: Session, district: str) -> list[ev.Recipient]:
    out = [agency_recipient(session, f"agencies/{CITY_CODE}", "city_centre")]
    if district and district != CITY_CODE:
        out.append(agency_recipient(session, f"agencies/{district}", "district_agency"))
    return out


def dispatch_recipients(session: Session, v: DispatchView) -> list[ev.Recipient]:
    out = [
        ev.Recipient(party=f"supervisors/{m.supervisor_id}", display_name=m.display_name, role="supervisor")
        for m in v.members
        if m.state == "active"
    ]
    out.append(ev.Recipient(party=v.plan.institution, display_name=v.plan.institution_name, role="institution"))
    out.append(agency_recipient(session, v.dispatch.dispatching_agency, "dispatching_agency"))
    return out
