"""Use cases of penalty cases (第二十六条 institutions, 第二十七条 supervisors; D13/D14): open (manually, or from a
record finding or a feedback answer in the caller's transaction), record a decision (a 第二十七条 suspension or
revocation takes effect on the appointment in the same transaction), record a correction, escalate a case
whose correction deadline passed (拒不改正), and raise the 第二十四条 immediate report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import cast

from sqlalchemy.orm import Session

from bjsv.registry.v1 import supervision_events_pb2 as ev
from bjsv.registry.v1 import supervision_pb2 as pb
from common import api
from common.auth import scope
from common.errors import FieldViolation, InvalidArgument, NotFound
from common.events import record_event
from services.registry import access
from services.registry.domain.districts import CITY_CODE, is_district
from services.registry.domain.problems import ProblemsError
from services.registry.domain.supervisors import Status
from services.registry.domain.workflow import cases as case_rules
from services.registry.domain.workflow.model import (
    LADDER_RUNGS,
    NO_ACTION_TEXT,
    CaseOrigin,
    CaseState,
    CaseSubjectKind,
    CaseTrigger,
    PenaltyRung,
)
from services.registry.storage import models as rm
from services.registry.storage import workflow_case_repository as cases_repo
from services.registry.storage import workflow_models as wm
from services.registry.storage import workflow_repository as repo
from services.registry.usecases import appointments as registry_appointments
from services.registry.usecases.errors import as_error, found
from services.registry.workflow import events, owners
from services.registry.workflow.context import Workflow, caller_org, require_role
from services.registry.workflow.convert import RUNG, to_proto_case, to_proto_decision
from services.registry.workflow.results import CaseView, Recommendation
from services.registry.workflow.rules_port import prior_case


@dataclass(frozen=True)
class CaseDraft:
    """A case about to be opened, with the rules service's recommendation obtained before the transaction."""

    kind: CaseSubjectKind
    subject: str
    subject_name: str
    district: str
    triggers: list[CaseTrigger]
    origin: CaseOrigin
    source: str
    items: list[int]
    description: str
    recommendation: Recommendation
    plan_id: int | None
    dispatch_id: int | None


@dataclass(frozen=True)
class NewCase:
    """OpenCase as asked (validated by `open_case`)."""

    kind: CaseSubjectKind | None
    subject: str
    triggers: list[CaseTrigger | None]
    description: str
    plan: str
    dispatch: str
    district: str
    source: str
    items: list[int]
    client_request_id: str


@dataclass(frozen=True)
class Decision:
    rung: PenaltyRung | None
    official: str
    official_org: str
    note: str
    correction_deadline: dt.date | None


#: A case just opened has no decision to word yet.
NO_DECISIONS: Mapping[PenaltyRung, str] = MappingProxyType({})


async def sanction_texts(wf: Workflow, day: dt.date) -> dict[PenaltyRung, str]:
    """The wording of every rung in the rule set in force on `day` (D13 `penalty.ladder.*`)."""
    texts = {PenaltyRung.NO_ACTION: NO_ACTION_TEXT}
    for parameter, rungs in LADDER_RUNGS.items():
        texts |= dict(zip(rungs, await wf.parameters.get(parameter, day), strict=True))
    return texts


def case_view(session: Session, row: wm.PenaltyCase, texts: Mapping[PenaltyRung, str]) -> CaseView:
    return CaseView(row, cases_repo.decisions(session, [row.id])[row.id], texts)


def _subject_recipients(session: Session, c: wm.PenaltyCase) -> list[ev.Recipient]:
    role = "institution" if c.subject_kind == CaseSubjectKind.INSTITUTION.value else "supervisor"
    return [
        *events.city_and_district(session, c.district),
        ev.Recipient(party=c.subject, display_name=c.subject_name, role=role),
    ]


def open_in(
    session: Session, wf: Workflow, draft: CaseDraft, *, now: dt.datetime, actor: str, crid: str | None = None
) -> wm.PenaltyCase:
    """Open a case inside the caller's transaction, with its case.opened event (and the immediate report)."""
    row = cases_repo.insert_case(
        session,
        subject_kind=draft.kind.value,
        subject=draft.subject,
        subject_name=draft.subject_name,
        district=draft.district,
        triggers=[t.value for t in draft.triggers],
        origin=draft.origin.value,
        source=draft.source,
        item_numbers=draft.items,
        description=draft.description,
        state=CaseState.OPEN.value,
        recommendation=draft.recommendation.as_json(),
        plan_id=draft.plan_id,
        dispatch_id=draft.dispatch_id,
        opened_by=actor,
        client_request_id=crid,
        now=now,
    )
    proto = to_proto_case(CaseView(row, [], NO_DECISIONS))
    record_event(
        session,
        type=events.CASE_OPENED,
        subject=proto.name,
        payload=ev.CaseOpened(penalty_case=proto, recipients=events.city_and_district(session, draft.district)),
    )
    if draft.recommendation.immediate_report:
        raise_immediate_report(session, wf, row, NO_DECISIONS)
    return row


def raise_immediate_report(
    session: Session, wf: Workflow, row: wm.PenaltyCase, texts: Mapping[PenaltyRung, str]
) -> None:
    """第二十四条 如发现严重违规情况，应随时向市鉴定管理中心报告."""
    if not cases_repo.mark_immediate_report(session, row):
        return
    proto = to_proto_case(case_view(session, row, texts))
    recommendation = Recommendation.from_json(row.recommendation)
    summary = (
        f"严重违规情况报告（第二十四条）：{row.subject_name or row.subject}，"
        f"{'；'.join(CaseTrigger(t).citation for t in row.triggers)}。建议：{recommendation.sanction_text}"
        f"（{recommendation.article}）。"
    )
    reporting = f"agencies/{row.district}" if row.district and row.district != CITY_CODE else f"agencies/{CITY_CODE}"
    record_event(
        session,
        type=events.IMMEDIATE_REPORT_RAISED,
        subject=proto.name,
        payload=ev.ImmediateReportRaised(
            penalty_case=proto,
            reporting_agency=reporting,
            summary=summary,
            recipients=[events.agency_recipient(session, wf.policy.city_centre, "city_centre")],
        ),
    )


async def recommend(
    wf: Workflow, kind: CaseSubjectKind, subject: str, triggers: list[CaseTrigger], description: str
) -> Recommendation:
    history = await wf.rules.history(subject)
    return await wf.rules.recommend(kind, subject, triggers, history, description, wf.clock.now())


def _by_request(session: Session, crid: str, texts: Mapping[PenaltyRung, str]) -> CaseView | None:
    row = cases_repo.case_by_request(session, crid)
    if row is None:
        return None
    owners.district(row.district, f"cases/{row.id}")  # a replay answers only a caller who may see the case
    return case_view(session, row, texts)


async def _subject_of(wf: Workflow, kind: CaseSubjectKind, subject: str) -> tuple[str, str]:
    """The subject's display name and home district."""
    if kind is CaseSubjectKind.INSTITUTION:
        inst = await wf.db.read(repo.institution, subject)
        if inst is None:
            raise NotFound(subject)
        return inst.display_name, inst.district_code
    views = await wf.db.read(repo.supervisors, [api.parse_id(subject, "supervisors", field="penalty_case.subject")])
    if not views:
        raise NotFound(subject)
    v = next(iter(views.values()))
    return v.full_name, v.district_code


async def open_case(wf: Workflow, c: NewCase) -> CaseView:
    crid = c.client_request_id.strip()
    if not crid:
        raise InvalidArgument("CLIENT_REQUEST_ID_REQUIRED", [FieldViolation("client_request_id", "请提供请求编号")])
    texts = await sanction_texts(wf, wf.today())
    if (done := await wf.db.read(_by_request, crid, texts)) is not None:
        return done
    try:
        case_rules.validate_open(c.kind, c.subject, c.triggers, c.description)
    except ProblemsError as e:
        raise as_error(e) from None
    kind, triggers = cast(CaseSubjectKind, c.kind), [t for t in c.triggers if t is not None]  # validated above
    plan_id = api.parse_id(c.plan, "plans", field="penalty_case.plan") if c.plan else None
    dispatch_id = api.parse_id(c.dispatch, "dispatches", field="penalty_case.dispatch") if c.dispatch else None
    plan_row = await wf.db.read(repo.plan, plan_id) if plan_id else None
    if plan_id and plan_row is None:
        raise NotFound(c.plan)
    subject_name, home = await _subject_of(wf, kind, c.subject)
    district = c.district or (plan_row.district if plan_row else home)
    if not (is_district(district) or district == CITY_CODE):
        raise InvalidArgument("DISTRICT_UNKNOWN", [FieldViolation("penalty_case.district", "区县代码不在附件1 表3中")])
    owners.district(district, f"agencies/{district}")
    desc = c.description.strip()
    draft = CaseDraft(
        kind,
        c.subject,
        subject_name,
        district,
        triggers,
        CaseOrigin.MANUAL,
        c.source,
        c.items,
        desc,
        await recommend(wf, kind, c.subject, triggers, desc),
        plan_id,
        dispatch_id,
    )
    now, actor = wf.clock.now(), caller_org()

    def tx(session: Session) -> CaseView:
        if (again := _by_request(session, crid, texts)) is not None:
            return again
        return case_view(session, open_in(session, wf, draft, now=now, actor=actor, crid=crid), texts)

    return await wf.db.write(tx)


def _apply_sanction(
    session: Session, c: wm.PenaltyCase, d: wm.CaseDecision, name: str, now: dt.datetime, text: str
) -> None:
    """第二十七条 暂停督导工作 / 取消其外督员资格 take effect on the appointment (the supervisor is no longer
    dispatchable) in the decision's transaction: no decision without the change, nor the reverse."""
    rung = PenaltyRung(d.rung)
    if rung not in (PenaltyRung.SUPERVISOR_SUSPENSION, PenaltyRung.SUPERVISOR_REVOCATION):
        return
    sup = session.get(rm.Supervisor, api.parse_id(c.subject, "supervisors"))
    if sup is None or sup.current_appointment_id is None:
        return
    appt = session.get(rm.Appointment, sup.current_appointment_id, with_for_update=True)
    revoke = rung is PenaltyRung.SUPERVISOR_REVOCATION
    # Idempotent: a suspension applies to an active appointment only, a revocation to one not yet revoked.
    if appt is None or (revoke and appt.status == Status.REVOKED) or (not revoke and appt.status != Status.ACTIVE):
        return
    change = registry_appointments.revoke if revoke else registry_appointments.suspend
    change(
        session,
        appointment_id=appt.id,
        reason=f"{text}（{name}）" + (f"：{d.note}" if d.note else ""),
        article="第二十七条",
        decided_by=d.official,
        case_reference=name,
        now=now.astimezone(dt.UTC),
    )


async def decide(wf: Workflow, case_id: int, name: str, dec: Decision) -> CaseView:
    row = await wf.db.read(cases_repo.case, case_id)
    if row is None:
        raise NotFound(name)
    owners.district(row.district, name)
    kind = CaseSubjectKind(row.subject_kind)
    require_role(case_rules.official_roles(kind), "记录处理决定（D13）")
    today, now = wf.today(), wf.clock.now()
    org = scope.acting_org(dec.official_org, "decision.official_org")
    texts = await sanction_texts(wf, today)

    def check(state: str) -> CaseState:
        try:
            return case_rules.decide(
                name, CaseState(state), kind, dec.rung, dec.correction_deadline, dec.official, today
            )
        except ProblemsError as e:
            raise as_error(e) from None

    check(row.state)  # validate before anything takes effect; the transaction re-checks against the locked row
    rung = cast(PenaltyRung, dec.rung)  # check() refuses a decision without one (RUNG_REQUIRED)

    def tx(session: Session) -> CaseView:
        c = found(cases_repo.case(session, case_id, for_update=True), name)
        state = check(c.state)
        d = cases_repo.insert_case_decision(
            session,
            c,
            state=state.value,
            rung=rung.value,
            official=dec.official.strip(),
            official_org=org,
            note=dec.note.strip(),
            correction_deadline=dec.correction_deadline,
            now=now,
            today=today,
        )
        decided = case_view(session, c, texts)
        record_event(
            session,
            type=events.CASE_DECIDED,
            subject=name,
            payload=ev.CaseDecided(
                penalty_case=to_proto_case(decided),
                decision=to_proto_decision(d, texts),
                recipients=_subject_recipients(session, c),
            ),
        )
        _apply_sanction(session, c, d, name, now, texts[rung])
        return decided

    return await wf.db.write(tx)


async def record_correction(wf: Workflow, case_id: int, name: str, note: str) -> CaseView:
    today, now = wf.today(), wf.clock.now()
    texts = await sanction_texts(wf, today)

    def tx(session: Session) -> CaseView:
        c = cases_repo.case(session, case_id, for_update=True)
        if c is None:
            raise NotFound(name)
        owners.district(c.district, name)
        try:
            state = case_rules.record_correction(name, CaseState(c.state), c.correction_deadline, today, note)
        except ProblemsError as e:
            raise as_error(e) from None
        cases_repo.record_correction(session, c, state=state.value, note=note.strip(), now=now)
        corrected = case_view(session, c, texts)
        record_event(
            session,
            type=events.CASE_CORRECTED,
            subject=name,
            payload=ev.CaseCorrected(
                penalty_case=to_proto_case(corrected), recipients=events.city_and_district(session, c.district)
            ),
        )
        return corrected

    return await wf.db.write(tx)


async def get(wf: Workflow, case_id: int, name: str) -> CaseView:
    texts = await sanction_texts(wf, wf.today())

    def read(session: Session) -> CaseView | None:
        row = cases_repo.case(session, case_id)
        if row is None:
            return None
        owners.district(row.district, name)
        return case_view(session, row, texts)

    view = await wf.db.read(read)
    if view is None:
        raise NotFound(name)
    return view


async def list_cases(
    wf: Workflow, *, subject: str, state: CaseState | None, district: str, plan_id: int | None, offset: int, limit: int
) -> tuple[list[CaseView], int]:
    texts = await sanction_texts(wf, wf.today())
    district = access.narrow(district, "")[0]  # a district agency sees its own district's cases

    def read(session: Session) -> tuple[list[CaseView], int]:
        rows, total = cases_repo.list_cases(
            session,
            subject=subject,
            state=state.value if state else "",
            district=district,
            plan_id=plan_id,
            offset=offset,
            limit=limit,
        )
        decs = cases_repo.decisions(session, [r.id for r in rows])
        return [CaseView(r, decs[r.id], texts) for r in rows], total

    return await wf.db.read(read)


async def _escalation(wf: Workflow, case_id: int) -> tuple[Recommendation, PenaltyRung | None]:
    """The new recommendation of a case whose correction deadline passed, and the rung it had: EvaluatePenalty
    given the case history with this case's uncorrected order (拒不改正, 第二十六条, D13) decides the rung."""
    row = found(await wf.db.read(cases_repo.case, case_id), f"cases/{case_id}")
    decs = (await wf.db.read(cases_repo.decisions, [case_id]))[case_id]
    history = [*await wf.rules.history(row.subject, exclude=case_id), prior_case(row, decs)]
    triggers = [CaseTrigger(t) for t in row.triggers]
    kind = CaseSubjectKind(row.subject_kind)
    rec = await wf.rules.recommend(kind, row.subject, triggers, history, row.description, wf.clock.now())
    return rec, PenaltyRung(decs[-1].rung) if decs else None


async def escalate_overdue_corrections(wf: Workflow) -> list[str]:
    """D13 拒不改正: a correction deadline passed with no correction recorded → escalated, with the rules
    service's new recommendation."""
    today = wf.today()
    texts = await sanction_texts(wf, today)
    escalated = []
    for case_id in await wf.db.read(cases_repo.cases_past_correction_deadline, today):
        recommendation, previous = await _escalation(wf, case_id)

        def tx(
            session: Session,
            case_id: int = case_id,
            recommendation: Recommendation = recommendation,
            previous: PenaltyRung | None = previous,
        ) -> str | None:
            c = found(cases_repo.case(session, case_id, for_update=True), f"cases/{case_id}")
            if not case_rules.due_for_escalation(CaseState(c.state), c.correction_deadline, today):
                return None  # corrected or escalated meanwhile
            missed = cases_repo.escalate_case(
                session, c, state=CaseState.ESCALATED.value, recommendation=recommendation.as_json()
            )
            proto = to_proto_case(case_view(session, c, texts))
            record_event(
                session,
                type=events.CASE_ESCALATED,
                subject=proto.name,
                payload=ev.CaseEscalated(
                    penalty_case=proto,
                    missed_deadline=api.format_date(missed),
                    previous_rung=RUNG[previous] if previous else pb.PENALTY_RUNG_UNSPECIFIED,
                    recipients=_subject_recipients(session, c),
                ),
            )
            if recommendation.immediate_report:
                raise_immediate_report(session, wf, c, texts)
            return proto.name

        if (name := await wf.db.write(tx)) is not None:
            escalated.append(name)
    return escalated
