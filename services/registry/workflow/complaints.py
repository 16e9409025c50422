"""第二十二条(九)(十) use cases: complaints received by the city centre and investigated (调查、核实), each change
with its outbox event; major problems reported by a dispatched supervisor to the dispatching agency and the
city centre."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bjsv.registry.v1 import supervision_events_pb2 as ev
from common import api
from common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, PreconditionViolation
from common.events import record_event
from services.registry import access
from services.registry.domain.districts import CITY_CODE, DISTRICTS
from services.registry.domain.problems import ProblemsError, Refused
from services.registry.domain.workflow import complaints as rules
from services.registry.storage import workflow_case_repository as cases_repo
from services.registry.storage import workflow_complaint_repository as complaints_repo
from services.registry.storage import workflow_models as wm
from services.registry.storage import workflow_repository as repo
from services.registry.usecases.errors import as_error
from services.registry.workflow import dispatches, events, owners
from services.registry.workflow.context import Workflow, caller_org, require_role
from services.registry.workflow.convert import to_proto_complaint, to_proto_major_problem


@dataclass(frozen=True)
class ComplaintIn:
    source: str
    subject: str
    content: str
    client_request_id: str


@dataclass(frozen=True)
class Handling:
    name: str
    handling: str
    result: str
    penalty_case: str
    close: bool


@dataclass(frozen=True)
class ComplaintFilter:
    district: str
    state: str  # rules.RECEIVED / INVESTIGATING / CLOSED, or "" for every state
    subject: str
    query: str


@dataclass(frozen=True)
class MajorProblemIn:
    dispatch: str
    reported_by: str
    findings: str
    suggestions: str
    client_request_id: str


def _subject(session: Session, subject: str) -> tuple[str, str]:
    """(display name, district) of the institution or supervisor complained about; NOT_FOUND if unknown."""
    if subject.startswith("institutions/"):
        inst = repo.institution(session, subject)
        if inst is not None:
            return inst.display_name, inst.district_code
    else:
        sup_id = api.parse_id(subject, "supervisors", field="complaint.subject")
        if (v := repo.supervisors(session, [sup_id]).get(sup_id)) is not None:
            return v.full_name, v.district_code
    raise NotFound(subject)


def _complaint_event(session: Session, type_: str, row: wm.Complaint) -> None:
    payload = ev.ComplaintReceived if type_ == events.COMPLAINT_RECEIVED else ev.ComplaintHandled
    record_event(session, type=type_, subject=f"complaints/{row.id}", payload=payload(
        complaint=to_proto_complaint(row), recipients=events.city_and_district(session, row.district)))  # fmt: skip


async def receive(wf: Workflow, c: ComplaintIn) -> wm.Complaint:
    """第二十二条(九): the city centre receives a complaint about an institution or a supervisor."""
    require_role(("city-centre",), "受理群众举报（第二十二条第（九）项）")
    try:
        rules.validate_complaint(c.source, c.subject, c.content, policy=wf.policy)
    except ProblemsError as e:
        raise as_error(e) from None
    now, actor = wf.clock.now(), caller_org()

    def tx(session: Session) -> wm.Complaint:
        if c.client_request_id and (done := complaints_repo.complaint_by_request(session, c.client_request_id)):
            return done
        name, district = _subject(session, c.subject)
        row = wm.Complaint(source=c.source.strip(), subject=c.subject, subject_name=name, district=district,
                           content=c.content.strip(), state=rules.RECEIVED, handling="", result="", received_by=actor,
                           client_request_id=c.client_request_id or None, received_at=now)  # fmt: skip
        complaints_repo.add(session, row)
        _complaint_event(session, events.COMPLAINT_RECEIVED, row)
        return row

    return await wf.db.write(tx)


async def handle(wf: Workflow, complaint_id: int, h: Handling) -> wm.Complaint:
    """调查、核实: record handling and result, link the case it led to, close it."""
    require_role(("city-centre", "district-agency"), "办理群众举报（第二十二条第（九）项）")
    case_id = api.parse_id(h.penalty_case, "cases", field="penalty_case") if h.penalty_case else None
    now = wf.clock.now()

    def tx(session: Session) -> wm.Complaint:
        row = complaints_repo.complaint(session, complaint_id, for_update=True)
        if row is None:
            raise NotFound(h.name)
        owners.district(row.district, h.name)  # investigated by the agency of the subject's district
        if case_id is not None:
            if (linked := cases_repo.case(session, case_id)) is None:
                raise NotFound(h.penalty_case)
            owners.district(linked.district, h.penalty_case)
        try:
            row.state = rules.next_state(h.name, row.state, handling=h.handling, result=h.result, close=h.close,
                                         policy=wf.policy)  # fmt: skip
        except (ProblemsError, Refused) as e:
            raise as_error(e) from None
        row.handling, row.result = h.handling.strip() or row.handling, h.result.strip() or row.result
        row.case_id = case_id or row.case_id
        row.closed_at = now if h.close else None
        _complaint_event(session, events.COMPLAINT_HANDLED, row)
        return row

    return await wf.db.write(tx)


async def get(wf: Workflow, complaint_id: int, name: str) -> wm.Complaint:
    row = await wf.db.read(complaints_repo.complaint, complaint_id)
    if row is None:
        raise NotFound(name)
    owners.district(row.district, name)
    return row


async def list_(wf: Workflow, f: ComplaintFilter, *, offset: int, limit: int) -> tuple[list[wm.Complaint], int]:
    """第二十二条(九): the city centre sees every complaint, a district agency those about its district (which it
    investigates); asking for another district is refused, not answered with one's own."""
    if f.district and f.district not in DISTRICTS:
        raise InvalidArgument("DISTRICT_UNKNOWN", [FieldViolation("district", "区县代码不在附件1 表3中")])
    district = access.narrow(f.district, "")[0]
    query = f.query.strip()

    def read(session: Session) -> tuple[list[wm.Complaint], int]:
        return complaints_repo.list_complaints(
            session, district=district, state=f.state, subject=f.subject, query=query, offset=offset, limit=limit
        )

    return await wf.db.read(read)


def _reporter(session: Session, dispatch_id: int, r: MajorProblemIn, supervisor_id: int) -> wm.Dispatch:
    d = repo.dispatch(session, dispatch_id)
    if d is None:
        raise NotFound(r.dispatch)
    owners.record(session, d, r.dispatch)  # to the dispatching agency, by a supervisor of its team
    members = repo.members(session, [dispatch_id])[dispatch_id]
    if not any(m.supervisor_id == supervisor_id and m.state == dispatches.ACTIVE for m in members):
        why = "重大问题应由本次委派的督导员报告（第二十二条第（十）项）"
        raise FailedPrecondition(
            "NOT_A_DISPATCHED_SUPERVISOR", [PreconditionViolation("bjsv.major-problem.reporter", r.reported_by, why)]
        )
    return d


async def report_major_problem(wf: Workflow, r: MajorProblemIn) -> wm.MajorProblemReport:
    """第二十二条(十): 向委派机构报告和反映情况，并提出建议 — to the dispatching agency, and the city centre."""
    dispatch_id = api.parse_id(r.dispatch, "dispatches", field="report.dispatch")
    supervisor_id = api.parse_id(r.reported_by, "supervisors", field="report.reported_by")
    owners.acting_supervisor(r.reported_by, "report.reported_by")
    try:
        rules.validate_major_problem(r.findings, r.suggestions, policy=wf.policy)
    except ProblemsError as e:
        raise as_error(e) from None
    now = wf.clock.now()

    def tx(session: Session) -> wm.MajorProblemReport:
        if r.client_request_id and (done := complaints_repo.report_by_request(session, r.client_request_id)):
            return done
        d = _reporter(session, dispatch_id, r, supervisor_id)
        parties = {d.dispatching_agency: "dispatching_agency"}
        parties.setdefault(f"agencies/{CITY_CODE}", "city_centre")
        recipients = list(parties)
        row = wm.MajorProblemReport(dispatch_id=dispatch_id, supervisor_id=supervisor_id, findings=r.findings.strip(),
                                    suggestions=r.suggestions.strip(), recipients=recipients,
                                    client_request_id=r.client_request_id or None, reported_at=now)  # fmt: skip
        complaints_repo.add(session, row)
        reporter = repo.supervisors(session, [supervisor_id])[supervisor_id].full_name
        record_event(session, type=events.MAJOR_PROBLEM_REPORTED, subject=f"major-problems/{row.id}",
                     payload=ev.MajorProblemReported(
                         report=to_proto_major_problem(row), reporter_name=reporter,
                         recipients=[events.agency_recipient(session, o, role) for o, role in parties.items()],
                     ))  # fmt: skip
        return row

    return await wf.db.write(tx)
