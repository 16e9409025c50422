"""Use cases of supervision records (督导记录表, 附件3; 第二十三条): submit, correct (a new version with a reason),
read. A 否 finding that D14 lists opens an institution case in the record's transaction.

Submitting is two phases: `prepare` reads and validates, and asks the rules service for the recommendation of
each case a finding opens (a network call, never inside a transaction); `commit` is the write transaction and
checks every precondition again against the locked dispatch row — a dispatch cancelled, or a member replaced,
after `prepare` still refuses the record."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bjsv.registry.v1 import supervision_events_pb2 as ev
from bjsv.rules.v1 import rules_pb2
from common import api
from common.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
)
from common.events import record_event
from services.registry.domain.problems import ProblemsError, Refused
from services.registry.domain.workflow import deadlines, timing
from services.registry.domain.workflow import dispatch as dispatch_rules
from services.registry.domain.workflow import records as record_rules
from services.registry.domain.workflow.model import (
    CaseOrigin,
    CaseSubjectKind,
    Finding,
    ItemAnswer,
    Lateness,
    RecordInput,
    SupervisionForm,
)
from services.registry.storage import workflow_case_repository as cases_repo
from services.registry.storage import workflow_models as wm
from services.registry.storage import workflow_repository as repo
from services.registry.usecases.errors import as_error, found
from services.registry.workflow import cases, declarations, dispatches, events, owners
from services.registry.workflow.context import Workflow, caller_org
from services.registry.workflow.convert import aware, to_proto_dispatch, to_proto_record
from services.registry.workflow.results import Recommendation, RecordView
from services.registry.workflow.rules_port import TRIGGER_FROM_RULES


@dataclass(frozen=True)
class RecordSubmission:
    dispatch: str
    submitted_by: str
    input: RecordInput
    client_request_id: str


@dataclass(frozen=True)
class FindingCase:
    """A finding that opens a case (D14), with its description and the recommendation obtained beforehand."""

    finding: Finding
    description: str
    recommendation: Recommendation


@dataclass(frozen=True)
class PreparedRecord:
    """A record validated against what `prepare` read; `commit` re-checks the preconditions."""

    submission: RecordSubmission
    dispatch_id: int
    submitter: int
    form: SupervisionForm
    answers: list[ItemAnswer]
    findings: list[Finding]
    cases: list[FindingCase]
    lateness: Lateness
    today: dt.date


def _require_crid(crid: str) -> None:
    if not crid:
        raise InvalidArgument(
            "CLIENT_REQUEST_ID_REQUIRED",
            [FieldViolation("client_request_id", "请提供请求编号以保证重复提交只生效一次")],
        )


def by_request(session: Session, crid: str) -> RecordView | None:
    ver = repo.record_version_by_request(session, crid)
    if ver is None:
        return None
    rec = found(repo.record(session, ver.record_id), f"records/{ver.record_id}")
    d = found(repo.dispatch(session, rec.dispatch_id), f"dispatches/{rec.dispatch_id}")
    owners.record(session, d, f"records/{rec.id}")
    return RecordView(rec, ver, d, found(repo.plan(session, d.plan_id), f"plans/{d.plan_id}"))


def _submittable(
    session: Session, dispatch_id: int, s: RecordSubmission, submitter: int, *, lock: bool = False
) -> wm.Dispatch:
    """第二十三条: the record of an active dispatch, by one of its team, once."""
    d = repo.dispatch(session, dispatch_id, for_update=lock)
    if d is not None:
        owners.record(session, d, s.dispatch)
    d = dispatches.require_active(d, s.dispatch)
    members = repo.members(session, [dispatch_id])[dispatch_id]
    if not any(m.supervisor_id == submitter and m.state == dispatches.ACTIVE for m in members):
        raise FailedPrecondition(
            "NOT_A_DISPATCHED_SUPERVISOR",
            [
                PreconditionViolation(
                    "bjsv.record.submitter", s.submitted_by, "督导记录表应由本次委派的督导员填写提交（第二十三条）"
                )
            ],
        )
    declarations.require_declared(session, dispatch_id, submitter, s.submitted_by, "提交督导记录表")
    if repo.record_of_dispatch(session, dispatch_id) is not None:
        raise AlreadyExists(
            "RECORD_ALREADY_SUBMITTED",
            "本次委派的督导记录表已提交；如需更正请提交更正版本并说明原因",
            resource_name=s.dispatch,
        )
    return d


async def _validated(
    wf: Workflow, subject: str, form: SupervisionForm, inp: RecordInput, start: dt.date, today: dt.date
) -> tuple[list[ItemAnswer], list[Finding]]:
    """The form's structure here; D11 (a 否 needs its remark) and D14 (the items that open a case) are the
    rules service's decision (EvaluateRecord): a DENY is the refusal, citing its findings and naming the
    decision so that a caller can fetch it whole (GetDecision)."""
    try:
        answers = record_rules.validate_record(
            form,
            inp.answers,
            problems_text=inp.problems,
            signatures=inp.signatures,
            sign_date=inp.sign_date,
            supervision_start=start,
            today=today,
            policy=wf.policy,
        )
    except ProblemsError as e:
        raise as_error(e) from None
    decided = await wf.rules.evaluate_record(subject, form, answers, today)
    if decided.decision.outcome == rules_pb2.OUTCOME_DENY:
        index = {a.item_number: i for i, a in enumerate(inp.answers)}
        raise InvalidArgument(
            "REMARK_REQUIRED_FOR_NO",
            [
                FieldViolation(f"record.answers[{index[int(n)]}].remark", f"第{n}项：{f.message}")
                for f in decided.decision.findings
                if f.severity == rules_pb2.SEVERITY_BLOCKING and (n := f.subject.removeprefix("items/")).isdigit()
            ],
            metadata={"decision": decided.decision.name},
        )
    openings = {o.item_number: tuple(TRIGGER_FROM_RULES[t] for t in o.triggers) for o in decided.case_openings}
    return answers, record_rules.derive_findings(form, answers, openings)


async def _finding_cases(
    wf: Workflow, plan_row: wm.CertPlan, form: SupervisionForm, findings: list[Finding], skip: set[int]
) -> list[FindingCase]:
    """D14: findings that open an institution case get their recommendation before the transaction."""
    out = []
    for f in findings:
        if f.triggers and f.item_number not in skip:
            desc = record_rules.case_description(form, f)
            rec = await cases.recommend(wf, CaseSubjectKind.INSTITUTION, plan_row.institution, list(f.triggers), desc)
            out.append(FindingCase(f, desc, rec))
    return out


def _open_finding_cases(
    session: Session, wf: Workflow, record_id: int, d: wm.Dispatch, to_open: list[FindingCase], actor: str
) -> dict[int, str]:
    p, now = found(repo.plan(session, d.plan_id), f"plans/{d.plan_id}"), wf.clock.now()
    opened = {}
    for fc in to_open:
        draft = cases.CaseDraft(
            CaseSubjectKind.INSTITUTION,
            p.institution,
            p.institution_name,
            d.district,
            list(fc.finding.triggers),
            CaseOrigin.RECORD_FINDING,
            f"records/{record_id}",
            [fc.finding.item_number],
            fc.description,
            fc.recommendation,
            p.id,
            d.id,
        )
        opened[fc.finding.item_number] = f"cases/{cases.open_in(session, wf, draft, now=now, actor=actor).id}"
    return opened


async def prepare(wf: Workflow, s: RecordSubmission) -> PreparedRecord:
    dispatch_id = api.parse_id(s.dispatch, "dispatches", field="record.dispatch")
    submitter = api.parse_id(s.submitted_by, "supervisors", field="record.submitted_by")
    owners.acting_supervisor(s.submitted_by, "record.submitted_by")
    d = await wf.db.read(_submittable, dispatch_id, s, submitter)
    plan_row = found(await wf.db.read(repo.plan, d.plan_id), f"plans/{d.plan_id}")
    form, today = SupervisionForm(d.form), wf.today()
    try:
        window = dispatch_rules.Window(aware(d.window_start), aware(d.window_end))
        timing.require_started(window, wf.clock.now(), subject=s.dispatch, what="督导记录表")
    except Refused as e:
        raise as_error(e) from None
    answers, findings = await _validated(wf, s.dispatch, form, s.input, d.start_day, today)
    lateness = deadlines.assess_lateness(d.record_due, today, calendar=wf.calendar)
    to_open = await _finding_cases(wf, plan_row, form, findings, set())
    return PreparedRecord(s, dispatch_id, submitter, form, answers, findings, to_open, lateness, today)


async def commit(wf: Workflow, p: PreparedRecord) -> RecordView:
    s, crid = p.submission, p.submission.client_request_id
    now, actor = wf.clock.now(), caller_org()

    def tx(session: Session) -> RecordView:
        if (again := by_request(session, crid)) is not None:
            return again
        d = _submittable(session, p.dispatch_id, s, p.submitter, lock=True)
        rec = repo.insert_record(
            session,
            dispatch_id=p.dispatch_id,
            district=d.district,
            form=p.form.value,
            first_submitted_on=p.today,
            late=p.lateness.late,
            no_items=[f.item_number for f in p.findings],
        )
        opened = _open_finding_cases(session, wf, rec.id, d, p.cases, actor)
        ver = repo.insert_record_version(
            session,
            record_id=rec.id,
            version=1,
            submitter=p.submitter,
            answers=p.answers,
            inp=s.input,
            findings=p.findings,
            opened=opened,
            now=now,
            due=d.record_due,
            lateness=p.lateness,
            reason="",
            client_request_id=crid,
            actor=actor,
        )
        submitted = RecordView(rec, ver, d, found(repo.plan(session, d.plan_id), f"plans/{d.plan_id}"))
        _record_event(session, events.RECORD_SUBMITTED, submitted)
        return submitted

    try:
        return await wf.db.write(tx)
    except sa.exc.IntegrityError:  # a concurrent submission won the unique key
        if (done := await wf.db.read(by_request, crid)) is not None:
            return done
        raise AlreadyExists(
            "RECORD_ALREADY_SUBMITTED", "本次委派的督导记录表已提交", resource_name=s.dispatch
        ) from None


def _record_event(session: Session, type_: str, v: RecordView, previous: int = 0) -> None:
    record = to_proto_record(v)
    dispatch = to_proto_dispatch(dispatches.view(session, v.dispatch))
    recipients = [events.agency_recipient(session, v.dispatch.dispatching_agency, "dispatching_agency")]
    payload: ev.RecordSubmitted | ev.RecordCorrected
    if type_ == events.RECORD_SUBMITTED:
        payload = ev.RecordSubmitted(record=record, dispatch=dispatch, recipients=recipients)
    else:
        payload = ev.RecordCorrected(record=record, dispatch=dispatch, previous_version=previous, recipients=recipients)
    record_event(session, type=type_, subject=record.name, payload=payload)


async def submit(wf: Workflow, s: RecordSubmission) -> RecordView:
    _require_crid(s.client_request_id)
    if (done := await wf.db.read(by_request, s.client_request_id)) is not None:
        return done
    return await commit(wf, await prepare(wf, s))


@dataclass(frozen=True)
class RecordCorrection:
    record_id: int
    name: str
    submitted_by: str
    input: RecordInput
    reason: str
    client_request_id: str


def _corrector(
    session: Session, c: RecordCorrection, submitter: int, *, lock: bool = False
) -> tuple[wm.SupervisionRecord, wm.Dispatch]:
    """A record is corrected by a supervisor of its dispatch's team (even one replaced since)."""
    rec = repo.record(session, c.record_id, for_update=lock)
    if rec is None:
        raise NotFound(c.name)
    d = found(repo.dispatch(session, rec.dispatch_id), f"dispatches/{rec.dispatch_id}")
    owners.record(session, d, c.name)
    if not any(m.supervisor_id == submitter for m in repo.members(session, [d.id])[d.id]):
        raise FailedPrecondition(
            "NOT_A_DISPATCHED_SUPERVISOR",
            [
                PreconditionViolation(
                    "bjsv.record.submitter", c.submitted_by, "督导记录表应由本次委派的督导员更正（第二十三条）"
                )
            ],
        )
    return rec, d


async def correct(wf: Workflow, c: RecordCorrection) -> RecordView:
    crid = c.client_request_id.strip()
    if not crid:
        raise InvalidArgument("CLIENT_REQUEST_ID_REQUIRED", [FieldViolation("client_request_id", "请提供请求编号")])
    if (done := await wf.db.read(by_request, crid)) is not None:
        return done
    if not c.reason.strip():
        raise InvalidArgument("REASON_REQUIRED", [FieldViolation("reason", "更正督导记录表须说明原因")])
    submitter = api.parse_id(c.submitted_by, "supervisors", field="record.submitted_by")
    owners.acting_supervisor(c.submitted_by, "record.submitted_by")
    rec, d = await wf.db.read(_corrector, c, submitter)
    plan_row = found(await wf.db.read(repo.plan, d.plan_id), f"plans/{d.plan_id}")
    form, today = SupervisionForm(rec.form), wf.today()
    answers, findings = await _validated(wf, c.name, form, c.input, d.start_day, today)
    lateness = deadlines.assess_lateness(d.record_due, today, calendar=wf.calendar)
    source = f"records/{c.record_id}"
    known: set[int] = set()  # items whose case an earlier version opened
    for f in findings:
        if f.triggers and await wf.db.read(cases_repo.case_for_source_item, source, f.item_number) is not None:
            known.add(f.item_number)
    to_open = await _finding_cases(wf, plan_row, form, findings, known)
    now, actor = wf.clock.now(), caller_org()

    def tx(session: Session) -> RecordView:
        if (again := by_request(session, crid)) is not None:
            return again
        row, d_ = _corrector(session, c, submitter, lock=True)
        existing = {
            f.item_number: cases_repo.case_for_source_item(session, source, f.item_number)
            for f in findings
            if f.triggers
        }
        opened = {n: f"cases/{x.id}" for n, x in existing.items() if x is not None}
        fresh = [fc for fc in to_open if fc.finding.item_number not in opened]  # opened meanwhile: linked instead
        opened |= _open_finding_cases(session, wf, row.id, d_, fresh, actor)
        previous = row.current_version
        ver = repo.insert_record_version(
            session,
            record_id=c.record_id,
            version=previous + 1,
            submitter=submitter,
            answers=answers,
            inp=c.input,
            findings=findings,
            opened=opened,
            now=now,
            due=d_.record_due,
            lateness=lateness,
            reason=c.reason.strip(),
            client_request_id=crid,
            actor=actor,
        )
        repo.set_current_version(session, row, previous + 1, no_items=[f.item_number for f in findings])
        corrected = RecordView(row, ver, d_, plan_row)
        _record_event(session, events.RECORD_CORRECTED, corrected, previous)
        return corrected

    return await wf.db.write(tx)


async def get(wf: Workflow, record_id: int, version: int, name: str) -> RecordView:
    def read(session: Session) -> RecordView | None:
        rec = repo.record(session, record_id)
        ver = repo.record_version(session, record_id, version or rec.current_version) if rec else None
        if rec is None or ver is None:
            return None
        d = found(repo.dispatch(session, rec.dispatch_id), f"dispatches/{rec.dispatch_id}")
        owners.dispatch(session, d, name)
        return RecordView(rec, ver, d, found(repo.plan(session, d.plan_id), f"plans/{d.plan_id}"))

    view = await wf.db.read(read)
    if view is None:
        raise NotFound(name if not version else f"{name}@{version}")
    return view


async def versions(wf: Workflow, record_id: int, name: str) -> list[RecordView]:
    def read(session: Session) -> list[RecordView] | None:
        rec = repo.record(session, record_id)
        if rec is None:
            return None
        d = found(repo.dispatch(session, rec.dispatch_id), f"dispatches/{rec.dispatch_id}")
        owners.dispatch(session, d, name)
        p = found(repo.plan(session, d.plan_id), f"plans/{d.plan_id}")
        return [RecordView(rec, v, d, p) for v in repo.record_versions(session, record_id)]

    view = await wf.db.read(read)
    if view is None:
        raise NotFound(name)
    return view
