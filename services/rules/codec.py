"""Proto ⇄ domain conversion and the per-item decision pipeline, shared by the gRPC front and the engine
workers.

Why not in api.py: the batch decisions (eligibility, recusal, team, penalty) run entirely inside the engine
worker processes — parse the request item, validate, derive facts, fire the rules, build the response
and the `decision.made` payload — so the two workers use both cores and the gRPC front only moves bytes
and writes the decision log. This module therefore imports protobuf messages and the domain only (no gRPC
server, no database, no durable_rules).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any, cast, overload

from google.protobuf import message as pb_message

from bjsv.rules.v1 import events_pb2, rules_pb2
from common import validation
from common.errors import FieldViolation, InvalidArgument
from common.events import outbox_row, timestamp
from services.rules.domain import model as m
from services.rules.domain.dates import BadDate, parse_date
from services.rules.domain.decisions import Decider, Evaluator, run_sync
from services.rules.domain.ruleset import Catalog, RuleSet

DATE_MSG = "日期格式应为 YYYY-MM-DD 且为有效日期"
REQUIRED = "必填"


# ----------------------------------------------------------------------------------------------------------
# from_proto_*: validation at the edge (violations collected, then one INVALID_ARGUMENT)


class Violations(list):
    def add(self, field: str, description: str) -> None:
        self.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self:
            raise InvalidArgument("INVALID_FACTS", list(self))


# A required date that is missing or invalid reads as this placeholder: its violation is recorded, and the
# caller's v.raise_if_any() refuses the request before anything reads the value.
REFUSED_DATE = dt.date.min


@overload
def date_field(value: str, path: str, v: Violations) -> dt.date: ...
@overload
def date_field(value: str, path: str, v: Violations, *, required: bool) -> dt.date | None: ...
def date_field(value: str, path: str, v: Violations, *, required: bool = True) -> dt.date | None:
    if not value:
        if required:
            v.add(path, REQUIRED + "（" + DATE_MSG + "）")
            return REFUSED_DATE
        return None
    try:
        return parse_date(value)
    except BadDate:
        v.add(path, f"{DATE_MSG}：{value!r}")
        return REFUSED_DATE if required else None


def from_proto_supervisor(p: rules_pb2.SupervisorFacts, path: str, v: Violations) -> m.Supervisor:
    if not p.name:
        v.add(f"{path}.name", REQUIRED)
    if p.gender not in (m.MALE, m.FEMALE):
        v.add(f"{path}.gender", "性别未指定（第九条第（五）项年龄上限按性别确定）")
    if p.kind not in (m.EXTERNAL, m.INTERNAL):
        v.add(f"{path}.kind", "督导员类别（外督员/内督员）未指定")
    birth = date_field(p.birth_date, f"{path}.birth_date", v)
    start = date_field(p.term_start_date, f"{path}.term_start_date", v, required=False)
    end = date_field(p.term_end_date, f"{path}.term_end_date", v, required=False)
    if start and end and end < start:
        v.add(f"{path}.term_end_date", "聘期结束日期早于开始日期")
    return m.Supervisor(
        name=p.name,
        person_id=p.person_id,
        gender=p.gender,
        birth_date=birth or dt.date(1900, 1, 1),
        kind=p.kind,
        level=p.level,
        district_code=p.district_code,
        institution=p.institution,
        status=p.status,
        term_start=start,
        term_end=end,
        training_passed=p.training_passed,
        attestations=frozenset(a.item for a in p.attestations),
        employer=p.employer,
        affiliations=tuple(p.affiliations),
        conflicts=tuple(m.Conflict(c.kind, c.counterpart) for c in p.declared_conflicts),
        recent_dispatch_count=p.recent_dispatch_count,
    )


def from_proto_plan(p: rules_pb2.PlanFacts, path: str, v: Violations) -> m.Plan:
    if not p.name:
        v.add(f"{path}.name", REQUIRED)
    if p.candidate_count < 0:
        v.add(f"{path}.candidate_count", "考生人数不能为负数")
    return m.Plan(p.name, p.institution, p.district_code, p.candidate_count)


def from_proto_session(p: rules_pb2.SessionFacts, path: str, v: Violations) -> m.Session:
    day = date_field(p.date, f"{path}.date", v, required=False)
    return m.Session(p.name, day, frozenset(p.examiner_person_ids), frozenset(p.candidate_person_ids))


def agency_violation(value: str, path: str, v: Violations) -> None:
    if not value.startswith(("agencies/", "institutions/")) or value.endswith("/"):
        v.add(path, "委派机构应为 agencies/<区代码>、agencies/A 或 institutions/<机构编号>（第十四条）")


def from_proto_eligibility(items, prefix: str, offset: int = 0) -> list[m.EligibilityInput]:
    v = Violations()
    out = []
    for i, r in enumerate(items, offset):
        path = f"{prefix}[{i}]" if prefix else ""
        dot = f"{path}." if path else ""
        s = from_proto_supervisor(r.supervisor, f"{dot}supervisor", v)
        day = date_field(r.as_of_date, f"{dot}as_of_date", v)
        if r.purpose not in m.PURPOSE_NAMES:
            v.add(f"{dot}purpose", "用途（聘任/续聘/委派）未指定")
        elif r.purpose != m.APPOINTMENT and s.status == m.STATUS_NONE:
            v.add(f"{dot}supervisor.status", "续聘或委派时须提供督导员状态")
        out.append(m.EligibilityInput(s, day, r.purpose))
    v.raise_if_any()
    return out


def from_proto_recusal(items, prefix: str, offset: int = 0) -> list[m.RecusalInput]:
    v = Violations()
    out = []
    for i, r in enumerate(items, offset):
        dot = f"{prefix}[{i}]." if prefix else ""
        out.append(
            m.RecusalInput(
                from_proto_supervisor(r.supervisor, f"{dot}supervisor", v),
                from_proto_plan(r.plan, f"{dot}plan", v),
                from_proto_session(r.session, f"{dot}session", v),
                date_field(r.as_of_date, f"{dot}as_of_date", v),
            )
        )
    v.raise_if_any()
    return out


def from_proto_team(items, prefix: str, offset: int = 0) -> list[m.TeamInput]:
    v = Violations()
    out = []
    for i, r in enumerate(items, offset):
        dot = f"{prefix}[{i}]." if prefix else ""
        agency_violation(r.dispatching_agency, f"{dot}dispatching_agency", v)
        members = tuple(from_proto_supervisor(s, f"{dot}supervisors[{j}]", v) for j, s in enumerate(r.supervisors))
        out.append(
            m.TeamInput(
                r.dispatching_agency,
                from_proto_plan(r.plan, f"{dot}plan", v),
                from_proto_session(r.session, f"{dot}session", v),
                members,
                date_field(r.as_of_date, f"{dot}as_of_date", v),
            )
        )
    v.raise_if_any()
    return out


def from_proto_penalty(items, prefix: str, offset: int = 0) -> list[m.PenaltyInput]:
    v = Violations()
    out = []
    for i, r in enumerate(items, offset):
        dot = f"{prefix}[{i}]." if prefix else ""
        day = date_field(r.as_of_date, f"{dot}as_of_date", v)
        trig = r.trigger.trigger
        if r.subject_kind == m.SUBJECT_INSTITUTION and trig not in m.ART26_TRIGGERS:
            v.add(f"{dot}trigger.trigger", "被督导机构适用第二十六条（一）至（六）项情形")
        elif r.subject_kind == m.SUBJECT_SUPERVISOR and trig not in m.ART27_TRIGGERS:
            v.add(f"{dot}trigger.trigger", "外督员适用第二十七条情形（未认真履行职责、利用职务谋取私利）")
        elif r.subject_kind not in (m.SUBJECT_INSTITUTION, m.SUBJECT_SUPERVISOR):
            v.add(f"{dot}subject_kind", "处理对象类别未指定")
        if r.subject_kind == m.SUBJECT_SUPERVISOR and r.supervisor_kind not in (0, m.EXTERNAL, m.INTERNAL):
            v.add(f"{dot}supervisor_kind", "督导员类别应为外督员或内督员")
        if not r.subject:
            v.add(f"{dot}subject", REQUIRED)
        occurred = date_field(r.trigger.occurred_date, f"{dot}trigger.occurred_date", v, required=False) or day
        history = []
        for j, c in enumerate(r.history):
            cp = f"{dot}history[{j}]"
            decided = date_field(c.decided_date, f"{cp}.decided_date", v)
            rung = m.rung_of_sanction(c.sanction)
            deadline = date_field(c.correction_deadline, f"{cp}.correction_deadline", v, required=False)
            corrected = date_field(c.corrected_date, f"{cp}.corrected_date", v, required=False)
            history.append(m.PriorCase(c.name, c.trigger, decided, rung, deadline, corrected))
        out.append(
            m.PenaltyInput(
                r.subject_kind, r.subject, tuple(history), trig, occurred, r.trigger.serious, day, r.supervisor_kind
            )
        )
    v.raise_if_any()
    return out


def from_proto_record(items, prefix: str, offset: int = 0) -> list[m.RecordInput]:
    v = Violations()
    out = []
    for i, r in enumerate(items, offset):
        dot = f"{prefix}[{i}]." if prefix else ""
        if r.form not in m.ANNEX3_ITEMS:
            v.add(f"{dot}form", "督导记录表类别（现场督导/事后认定资料督导）未指定（附件3）")
        count = m.ANNEX3_ITEMS.get(r.form, 17)
        seen: set[int] = set()
        for j, a in enumerate(r.answers):
            ap = f"{dot}answers[{j}]"
            if not 1 <= a.item_number <= count:
                v.add(f"{ap}.item_number", f"督导记录表没有第{a.item_number}项（共{count}项，附件3）")
            elif a.item_number in seen:
                v.add(f"{ap}.item_number", f"第{a.item_number}项重复填写")
            seen.add(a.item_number)
            if a.answer not in (m.YES, m.NO):
                v.add(f"{ap}.answer", f"第{a.item_number}项未勾选“是”或“否”（附件3 注1：所有项目均为勾选项）")
        answers = tuple(m.RecordAnswer(a.item_number, a.answer, a.remark) for a in r.answers)
        out.append(m.RecordInput(r.subject, r.form, answers, date_field(r.as_of_date, f"{dot}as_of_date", v)))
    v.raise_if_any()
    return out


def from_proto_feedback(items, prefix: str, offset: int = 0) -> list[m.FeedbackInput]:
    v = Violations()
    out = []
    for i, r in enumerate(items, offset):
        dot = f"{prefix}[{i}]." if prefix else ""
        if not r.subject:
            v.add(f"{dot}subject", REQUIRED)
        for name in ("badge_worn", "duties_performed", "integrity_kept"):
            if getattr(r, name) not in (m.YES, m.NO):
                v.add(f"{dot}{name}", "反馈表各项须回答“是”或“否”（附件4）")
        day = date_field(r.as_of_date, f"{dot}as_of_date", v)
        out.append(m.FeedbackInput(r.subject, r.badge_worn, r.duties_performed, r.integrity_kept, day))
    v.raise_if_any()
    return out


# ----------------------------------------------------------------------------------------------------------
# to_proto_*


def to_proto_decision(d: m.Decision) -> rules_pb2.Decision:
    return rules_pb2.Decision(
        name=d.name,
        kind=cast(rules_pb2.DecisionKind, d.kind),
        outcome=cast(rules_pb2.Outcome, d.outcome),
        findings=[
            rules_pb2.Finding(
                rule_id=f.rule_id,
                article=f.article,
                interpretation=f.interpretation,
                severity=cast(rules_pb2.Severity, f.severity),
                message=f.message,
                subject=f.subject,
                facts=f.facts,
            )
            for f in d.findings
        ],
        subject=d.subject,
        as_of_date=d.as_of.isoformat(),
        ruleset_id=d.ruleset_id,
        ruleset_version=d.ruleset_version,
        ruleset_effective_date=d.ruleset_effective.isoformat(),
        evaluation_time=timestamp(d.evaluated_at) if d.evaluated_at else None,
        input_digest=d.input_digest,
        derived_facts=d.derived,
    )


BATCH_KINDS: dict[str, type[pb_message.Message]] = {
    "bjsv.rules.v1.CheckEligibilityRequest": rules_pb2.CheckEligibilityRequest,
    "bjsv.rules.v1.CheckRecusalRequest": rules_pb2.CheckRecusalRequest,
    "bjsv.rules.v1.CheckTeamRequest": rules_pb2.CheckTeamRequest,
    "bjsv.rules.v1.EvaluatePenaltyRequest": rules_pb2.EvaluatePenaltyRequest,
    "bjsv.rules.v1.EvaluateRecordRequest": rules_pb2.EvaluateRecordRequest,
    "bjsv.rules.v1.EvaluateFeedbackRequest": rules_pb2.EvaluateFeedbackRequest,
}


def _eligibility_response(x: m.Decision) -> pb_message.Message:
    return rules_pb2.CheckEligibilityResponse(decision=to_proto_decision(x))


def _recusal_response(x: m.Decision) -> pb_message.Message:
    return rules_pb2.CheckRecusalResponse(decision=to_proto_decision(x))


def _team_response(x: m.Decision) -> pb_message.Message:
    return rules_pb2.CheckTeamResponse(
        decision=to_proto_decision(x), recommended_team_size=x.recommended_team_size, member_count=x.member_count
    )


def _penalty_response(x: m.Decision) -> pb_message.Message:
    r = x.recommendation
    if r is None:  # the penalty decider always recommends; a decision without one is a bug, not bad input
        raise RuntimeError("penalty decision without a recommendation")
    return rules_pb2.EvaluatePenaltyResponse(
        decision=to_proto_decision(x),
        recommendation=rules_pb2.PenaltyRecommendation(
            article=r.article,
            rung=r.rung,
            sanction=cast(rules_pb2.Sanction, r.sanction),
            sanction_text=r.sanction_text,
            immediate_report=r.immediate_report,
            serious=r.serious,
        ),
    )


def _record_response(x: m.Decision) -> pb_message.Message:
    return rules_pb2.EvaluateRecordResponse(
        decision=to_proto_decision(x),
        case_openings=[
            rules_pb2.CaseOpening(item_number=n, triggers=cast(list[rules_pb2.PenaltyTrigger], t))
            for n, t in x.case_openings
        ],
    )


def _feedback_response(x: m.Decision) -> pb_message.Message:
    return rules_pb2.EvaluateFeedbackResponse(
        decision=to_proto_decision(x),
        opens_review=bool(x.review_trigger),
        review_trigger=cast(rules_pb2.PenaltyTrigger, x.review_trigger),
    )


# request type → (from_proto_*, Decider method name, response builder)
_PIPELINES = {
    "bjsv.rules.v1.CheckEligibilityRequest": (from_proto_eligibility, "eligibility", _eligibility_response),
    "bjsv.rules.v1.CheckRecusalRequest": (from_proto_recusal, "recusal", _recusal_response),
    "bjsv.rules.v1.CheckTeamRequest": (from_proto_team, "team", _team_response),
    "bjsv.rules.v1.EvaluatePenaltyRequest": (from_proto_penalty, "penalty", _penalty_response),
    "bjsv.rules.v1.EvaluateRecordRequest": (from_proto_record, "record", _record_response),
    "bjsv.rules.v1.EvaluateFeedbackRequest": (from_proto_feedback, "feedback", _feedback_response),
}


async def evaluate_items(
    decider: Decider,
    type_name: str,
    items: list,
    catalog: Catalog,
    ev: Evaluator,
    pinned: RuleSet | None,
    prefix: str = "",
    offset: int = 0,
) -> list[tuple[m.Decision, pb_message.Message]]:
    """Decide request items of one batch kind: (domain decision, response message without name) each."""
    if type_name not in _PIPELINES:
        raise ValueError(f"not a batch decision kind: {type_name}")
    parse, method, respond = _PIPELINES[type_name]
    decs = await getattr(decider, method)(catalog, ev, parse(items, prefix, offset), pinned)
    return [(x, respond(x)) for x in decs]


def decision_made(name: str, dec: m.Decision) -> events_pb2.DecisionMade:
    """The `decision.made` payload, from the domain decision (the same values the response carries, without
    reading them back out of the response message)."""
    rec = dec.recommendation
    return events_pb2.DecisionMade(
        name=name,
        kind=cast(rules_pb2.DecisionKind, dec.kind),
        outcome=cast(rules_pb2.Outcome, dec.outcome),
        subject=dec.subject,
        as_of_date=dec.as_of.isoformat(),
        ruleset_id=dec.ruleset_id,
        ruleset_version=dec.ruleset_version,
        rule_ids=[f.rule_id for f in dec.findings],
        evaluation_time=timestamp(dec.evaluated_at) if dec.evaluated_at else None,
        recommended_sanction=cast(rules_pb2.Sanction, rec.sanction if rec else 0),
        immediate_report=rec.immediate_report if rec else False,
    )


@dataclass
class Decided:
    """One decided item ready for the decision log: its columns and its outbox row (event envelope built)."""

    row: dict
    outbox: dict


EVENT_SOURCE = "rules"
DECISION_MADE = "decision.made"


def name_and_pack(item_bytes: bytes, type_name: str, dec: m.Decision, resp: Any, *, trace: str, actor: str) -> Decided:
    """Name the decision, serialise the response, and build its `decision.made` outbox row
    (common.events.outbox_row) — here, so that in a batch the engine workers do this work in parallel
    instead of the gRPC front. `resp` is any of the rules service's responses: each has a `decision` field,
    which no common base class of the generated messages declares."""
    did = str(uuid.uuid4())
    resp.decision.name = name = f"decisions/{did}"
    resp.decision.input_digest = digest = hashlib.sha256(item_bytes).hexdigest()
    response = resp.SerializeToString()
    row = {
        "id": did,
        "kind": dec.kind,
        "outcome": dec.outcome,
        "subject": dec.subject,
        "as_of_date": dec.as_of.isoformat(),
        "ruleset_id": dec.ruleset_id,
        "ruleset_version": dec.ruleset_version,
        "evaluated_at": dec.evaluated_at,
        "input_digest": digest,
        "input_type": type_name,
        "input": item_bytes,
        "result_type": resp.DESCRIPTOR.full_name,
        "result": response,
        "actor": actor,
        "trace_id": trace,
    }
    outbox = outbox_row(
        source=EVENT_SOURCE,
        type=DECISION_MADE,
        subject=name,
        payload=decision_made(name, dec),
        trace_id=trace,
        actor=actor,
        occurred=dec.evaluated_at,
        event_id=did,
    )  # one event per decision
    return Decided(row, outbox)


PROPOSE_TEAM = "bjsv.rules.v1.ProposeTeamRequest"


def _pool_digest(r: rules_pb2.ProposeTeamRequest, blob: bytes) -> str:
    """Digest of the draw input without the seed (pool, plan, session, dates, size). Without `also_on_dates`,
    `seed` is the last field and a deterministic serialisation writes fields in number order, so the request
    bytes without the seed are the logged bytes minus the seed's own encoding (a 1 MB pool is not serialised
    twice); otherwise the request is serialised again without the seed."""
    seed_suffix = rules_pb2.ProposeTeamRequest(seed=r.seed).SerializeToString()
    if r.seed and blob.endswith(seed_suffix):
        return hashlib.sha256(memoryview(blob)[: len(blob) - len(seed_suffix)]).hexdigest()
    seed, r.seed = r.seed, ""
    digest = hashlib.sha256(r.SerializeToString(deterministic=True)).hexdigest()
    r.seed = seed
    return digest


async def propose_team(
    decider: Decider,
    r: rules_pb2.ProposeTeamRequest,
    blob: bytes,
    catalog: Catalog,
    ev: Evaluator,
    pinned: RuleSet | None,
) -> tuple[m.Decision, rules_pb2.ProposeTeamResponse]:
    """ProposeTeam (双随机): validate, draw, let the engine decide the drawn members and the team. Runs in an
    engine worker (decide_blobs), next to its engine, so checking candidates costs no round trips."""
    from services.rules.domain import draws  # draws imports decisions; keep codec import-light

    v = Violations()
    agency_violation(r.dispatching_agency, "dispatching_agency", v)
    plan = from_proto_plan(r.plan, "plan", v)
    session = from_proto_session(r.session, "session", v)
    day = date_field(r.as_of_date, "as_of_date", v)
    also_on = [date_field(d, f"also_on_dates[{i}]", v) for i, d in enumerate(r.also_on_dates)]
    if r.team_size < 0:
        v.add("team_size", "人数不能为负数")
    pool = r.pool
    entries = [(p.name, p.recent_dispatch_count) for p in pool]
    for i in (i for i, (name, _) in enumerate(entries) if not name):
        v.add(f"pool[{i}].name", REQUIRED)
    v.raise_if_any()

    def load(i: int) -> m.Supervisor:
        validation.check(pool[i], prefix=f"pool[{i}].")
        lv = Violations()
        s = from_proto_supervisor(pool[i], f"pool[{i}]", lv)
        lv.raise_if_any()
        return s

    digest = _pool_digest(r, blob)
    draw = await draws.propose_team(
        decider,
        catalog,
        ev,
        agency=r.dispatching_agency,
        plan=plan,
        session=session,
        as_of=day,
        pool=entries,
        load=load,
        team_size=r.team_size,
        seed=r.seed,
        pool_digest=digest,
        pinned=pinned,
        also_on=also_on,
    )
    resp = rules_pb2.ProposeTeamResponse(
        team=draw.team,
        seed=draw.seed,
        pool_digest=digest,
        eligible_count=draw.eligible_count,
        evaluated_count=draw.evaluated_count,
        exclusions=[rules_pb2.Exclusion(supervisor=n, rule_ids=ids) for n, ids in draw.exclusions.items()],
        decision=to_proto_decision(draw.decision),
    )
    return draw.decision, resp


def share_pool(r: rules_pb2.ProposeTeamRequest, row: dict) -> dict[str, bytes]:
    """Cut the pool out of a ProposeTeam decision's logged input: it is stored once per content digest
    (input_part) and the row keeps the rest plus where the pool goes back (repository.get_decision_with_input),
    so the decision log still holds every input byte for byte, without ~1.1 MB per draw of a 5,000 pool.

    A deterministic serialisation writes fields in number order, so the bytes are: fields 1–3, then every
    pool entry (field 4), then fields 5–8. Anything else (e.g. unknown fields) → the row keeps the whole input.
    """
    blob = row["input"]
    if not r.pool:
        return {}
    head = rules_pb2.ProposeTeamRequest(dispatching_agency=r.dispatching_agency)
    if r.HasField("plan"):
        head.plan.CopyFrom(r.plan)
    if r.HasField("session"):
        head.session.CopyFrom(r.session)
    tail = rules_pb2.ProposeTeamRequest(
        as_of_date=r.as_of_date, team_size=r.team_size, seed=r.seed, also_on_dates=r.also_on_dates
    )
    head_b, tail_b = head.SerializeToString(deterministic=True), tail.SerializeToString(deterministic=True)
    end = len(blob) - len(tail_b)
    if not (blob.startswith(head_b) and blob.endswith(tail_b) and end > len(head_b) and blob[len(head_b)] == 0x22):
        return {}
    pool = blob[len(head_b) : end]
    digest = hashlib.sha256(pool).hexdigest()
    row["input"] = head_b + tail_b
    row["input_part_digest"] = digest
    row["input_part_offset"] = len(head_b)
    return {digest: pool}


def decide_blobs(
    decider: Decider,
    type_name: str,
    blobs: list[bytes],
    catalog: Catalog,
    ev: Evaluator,
    pinned_version: str | None,
    offset: int = 0,
    prefix: str = "requests",
    *,
    trace: str = "",
    actor: str = "",
) -> list[Decided]:
    """The worker side of a batch (or of a ProposeTeam): parse, decide (synchronous evaluator), name and
    serialise every item."""
    pinned = catalog.by_version(pinned_version) if pinned_version else None
    if pinned_version and pinned is None:
        raise ValueError(f"rule-set version {pinned_version} not hosted by this worker")
    if type_name == PROPOSE_TEAM:
        # the front hands over the request bytes as received (it never parses a ~1 MB pool); the seed is
        # drawn and the canonical (deterministic) bytes made here, and the pool is cut out for the log
        out = []
        for b in blobs:
            # the bounds the interceptor could not check; a pool member's when it is drawn (load, below)
            r = validation.parse(rules_pb2.ProposeTeamRequest, b, lazy=frozenset({"pool"}))
            if not r.seed:
                from services.rules.domain.draws import new_seed

                r.seed = new_seed()  # logged with the input, so the draw can be re-run exactly
            canonical = r.SerializeToString(deterministic=True)
            dec, resp = run_sync(propose_team(decider, r, canonical, catalog, ev, pinned))
            packed = name_and_pack(canonical, type_name, dec, resp, trace=trace, actor=actor)
            packed.row["_parts"] = share_pool(r, packed.row)
            out.append(packed)
        return out
    cls = BATCH_KINDS[type_name]
    items = [cls.FromString(b) for b in blobs]
    # field paths in errors count from the start of the whole batch, not of this worker's chunk
    results = run_sync(evaluate_items(decider, type_name, items, catalog, ev, pinned, prefix, offset))
    return [
        name_and_pack(b, type_name, dec, resp, trace=trace, actor=actor)
        for b, (dec, resp) in zip(blobs, results, strict=True)
    ]
