"""gRPC servicer of bjsv.rules.v1.RulesService: proto ⇄ domain, decision logging, replay.

Thin by design: validation of the request shape and conversion (from_proto_* / to_proto_*) live here,
the rules in services.rules.domain, the engine behind services.rules.runtime. Every decision returned is
logged (request item bytes + response bytes, rule-set version) and published as `decision.made` through
the outbox in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf import message as pb_message
from google.protobuf.timestamp_pb2 import Timestamp

from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from common import context
from common.clock import Clock
from common.db import Database
from common.errors import FieldViolation, InvalidArgument, NotFound
from services.rules.domain import draws
from services.rules.domain import model as m
from services.rules.domain.dates import BadDate, parse_date
from services.rules.domain.decisions import Decider, Evaluator
from services.rules.domain.ruleset import Catalog, RuleSet, RuleSetError, build_ruleset
from services.rules.events import decision_made, ruleset_loaded
from services.rules.runtime import Generation, RulesRuntime
from services.rules.storage import repository
from services.rules.storage.repository import LoggedDecision

_DATE_MSG = "日期格式应为 YYYY-MM-DD 且为有效日期"
_REQUIRED = "必填"


# ----------------------------------------------------------------------------------------------------------
# from_proto_*: validation at the edge (violations collected, then one INVALID_ARGUMENT)


class _Violations(list):
    def add(self, field: str, description: str) -> None:
        self.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self:
            raise InvalidArgument("INVALID_FACTS", list(self))


def _date(value: str, path: str, v: _Violations, *, required: bool = True) -> dt.date | None:
    if not value:
        if required:
            v.add(path, _REQUIRED + "（" + _DATE_MSG + "）")
        return None
    try:
        return parse_date(value)
    except BadDate:
        v.add(path, f"{_DATE_MSG}：{value!r}")
        return None


def from_proto_supervisor(p: rules_pb2.SupervisorFacts, path: str, v: _Violations) -> m.Supervisor:
    if not p.name:
        v.add(f"{path}.name", _REQUIRED)
    if p.gender not in (m.MALE, m.FEMALE):
        v.add(f"{path}.gender", "性别未指定（第九条第（五）项年龄上限按性别确定）")
    if p.kind not in (m.EXTERNAL, m.INTERNAL):
        v.add(f"{path}.kind", "督导员类别（外督员/内督员）未指定")
    birth = _date(p.birth_date, f"{path}.birth_date", v)
    start = _date(p.term_start_date, f"{path}.term_start_date", v, required=False)
    end = _date(p.term_end_date, f"{path}.term_end_date", v, required=False)
    if start and end and end < start:
        v.add(f"{path}.term_end_date", "聘期结束日期早于开始日期")
    return m.Supervisor(
        name=p.name, person_id=p.person_id, gender=p.gender, birth_date=birth or dt.date(1900, 1, 1), kind=p.kind,
        level=p.level, district_code=p.district_code, institution=p.institution, status=p.status,
        term_start=start, term_end=end, training_passed=p.training_passed,
        attestations=frozenset(a.item for a in p.attestations), employer=p.employer,
        affiliations=tuple(p.affiliations),
        conflicts=tuple(m.Conflict(c.kind, c.counterpart) for c in p.declared_conflicts),
        recent_dispatch_count=p.recent_dispatch_count)


def from_proto_plan(p: rules_pb2.PlanFacts, path: str, v: _Violations) -> m.Plan:
    if not p.name:
        v.add(f"{path}.name", _REQUIRED)
    if p.candidate_count < 0:
        v.add(f"{path}.candidate_count", "考生人数不能为负数")
    return m.Plan(p.name, p.institution, p.district_code, p.candidate_count)


def from_proto_session(p: rules_pb2.SessionFacts, path: str, v: _Violations) -> m.Session:
    day = _date(p.date, f"{path}.date", v, required=False)
    return m.Session(p.name, day, frozenset(p.examiner_person_ids), frozenset(p.candidate_person_ids))


def _agency(value: str, path: str, v: _Violations) -> None:
    if not (value.startswith("agencies/") or value.startswith("institutions/")) or value.endswith("/"):
        v.add(path, "委派机构应为 agencies/<区代码>、agencies/A 或 institutions/<机构编号>（第十四条）")


def from_proto_eligibility(items, prefix: str) -> list[m.EligibilityInput]:
    v = _Violations()
    out = []
    for i, r in enumerate(items):
        path = f"{prefix}[{i}]" if prefix else ""
        dot = f"{path}." if path else ""
        s = from_proto_supervisor(r.supervisor, f"{dot}supervisor", v)
        day = _date(r.as_of_date, f"{dot}as_of_date", v)
        if r.purpose not in m.PURPOSE_NAMES:
            v.add(f"{dot}purpose", "用途（聘任/续聘/委派）未指定")
        elif r.purpose != m.APPOINTMENT and s.status == m.STATUS_NONE:
            v.add(f"{dot}supervisor.status", "续聘或委派时须提供督导员状态")
        out.append(m.EligibilityInput(s, day, r.purpose))
    v.raise_if_any()
    return out


def from_proto_recusal(items, prefix: str) -> list[m.RecusalInput]:
    v = _Violations()
    out = []
    for i, r in enumerate(items):
        dot = f"{prefix}[{i}]." if prefix else ""
        out.append(m.RecusalInput(from_proto_supervisor(r.supervisor, f"{dot}supervisor", v),
                                  from_proto_plan(r.plan, f"{dot}plan", v),
                                  from_proto_session(r.session, f"{dot}session", v),
                                  _date(r.as_of_date, f"{dot}as_of_date", v)))
    v.raise_if_any()
    return out


def from_proto_team(items, prefix: str) -> list[m.TeamInput]:
    v = _Violations()
    out = []
    for i, r in enumerate(items):
        dot = f"{prefix}[{i}]." if prefix else ""
        _agency(r.dispatching_agency, f"{dot}dispatching_agency", v)
        members = tuple(from_proto_supervisor(s, f"{dot}supervisors[{j}]", v) for j, s in enumerate(r.supervisors))
        out.append(m.TeamInput(r.dispatching_agency, from_proto_plan(r.plan, f"{dot}plan", v),
                               from_proto_session(r.session, f"{dot}session", v), members,
                               _date(r.as_of_date, f"{dot}as_of_date", v)))
    v.raise_if_any()
    return out


def from_proto_penalty(items, prefix: str) -> list[m.PenaltyInput]:
    v = _Violations()
    out = []
    for i, r in enumerate(items):
        dot = f"{prefix}[{i}]." if prefix else ""
        day = _date(r.as_of_date, f"{dot}as_of_date", v)
        trig = r.trigger.trigger
        if r.subject_kind == m.SUBJECT_INSTITUTION and trig not in m.ART26_TRIGGERS:
            v.add(f"{dot}trigger.trigger", "被督导机构适用第二十六条（一）至（六）项情形")
        elif r.subject_kind == m.SUBJECT_SUPERVISOR and trig not in m.ART27_TRIGGERS:
            v.add(f"{dot}trigger.trigger", "外督员适用第二十七条情形（未认真履行职责、利用职务谋取私利）")
        elif r.subject_kind not in (m.SUBJECT_INSTITUTION, m.SUBJECT_SUPERVISOR):
            v.add(f"{dot}subject_kind", "处理对象类别未指定")
        if not r.subject:
            v.add(f"{dot}subject", _REQUIRED)
        occurred = _date(r.trigger.occurred_date, f"{dot}trigger.occurred_date", v, required=False) or day
        history = []
        for j, c in enumerate(r.history):
            cp = f"{dot}history[{j}]"
            decided = _date(c.decided_date, f"{cp}.decided_date", v)
            rung = 0 if c.sanction == 0 else (c.sanction - 1) % 3 + 1
            history.append(m.PriorCase(c.name, c.trigger, decided or dt.date(1900, 1, 1), rung,
                                       _date(c.correction_deadline, f"{cp}.correction_deadline", v, required=False),
                                       _date(c.corrected_date, f"{cp}.corrected_date", v, required=False)))
        out.append(m.PenaltyInput(r.subject_kind, r.subject, tuple(history), trig, occurred, r.trigger.serious, day))
    v.raise_if_any()
    return out


# ----------------------------------------------------------------------------------------------------------
# to_proto_*


def _ts(at: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


_TS_CACHE: dict[dt.datetime, Timestamp] = {}


def _ts_cached(at: dt.datetime) -> Timestamp:
    ts = _TS_CACHE.get(at)
    if ts is None:
        _TS_CACHE.clear()  # batches share one instant; keep only the latest
        ts = _TS_CACHE[at] = _ts(at)
    return ts


def to_proto_decision(d: m.Decision) -> rules_pb2.Decision:
    return rules_pb2.Decision(
        name=d.name, kind=d.kind, outcome=d.outcome,
        findings=[rules_pb2.Finding(rule_id=f.rule_id, article=f.article, interpretation=f.interpretation,
                                    severity=f.severity, message=f.message, subject=f.subject, facts=f.facts)
                  for f in d.findings],
        subject=d.subject, as_of_date=d.as_of.isoformat(), ruleset_id=d.ruleset_id,
        ruleset_version=d.ruleset_version, ruleset_effective_date=d.ruleset_effective.isoformat(),
        evaluation_time=_ts_cached(d.evaluated_at) if d.evaluated_at else None, input_digest=d.input_digest,
        derived_facts=d.derived)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def to_proto_ruleset(rs: RuleSet, loaded_at: dt.datetime | None) -> rules_pb2.RuleSet:
    kinds = {"team_member": "team"}
    return rules_pb2.RuleSet(
        id=rs.id, version=rs.version, effective_from=rs.effective_from.isoformat(),
        effective_until=rs.effective_until.isoformat() if rs.effective_until else "", title=rs.title,
        rules=[rules_pb2.RuleDeclaration(
            id=r.id, article=r.article, interpretation=r.interpretation, severity=r.severity, message=r.message,
            valid_from=r.valid_from.isoformat(), valid_until=r.valid_until.isoformat() if r.valid_until else "",
            decision_kind=kinds.get(r.kind, r.kind), description=r.description) for r in rs.rules],
        parameters=[rules_pb2.Parameter(
            name=p.name, value_json=_json(p.value), article=p.article, interpretation=p.interpretation,
            description=p.description, overridden=p.overridden, default_json=_json(p.default))
            for p in rs.parameters.values()],
        loaded_time=_ts(loaded_at) if loaded_at else None)


def _strip_volatile(resp: pb_message.Message) -> bytes:
    """Response bytes without decision name and evaluation time (what a replay must reproduce)."""
    copy = type(resp)()
    copy.CopyFrom(resp)
    copy.decision.name = ""
    copy.decision.ClearField("evaluation_time")
    return copy.SerializeToString(deterministic=True)


# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    request: type
    response: type


_TYPES = {cls.DESCRIPTOR.full_name: cls for cls in (
    rules_pb2.CheckEligibilityRequest, rules_pb2.CheckRecusalRequest, rules_pb2.CheckTeamRequest,
    rules_pb2.EvaluatePenaltyRequest, rules_pb2.ProposeTeamRequest, rules_pb2.SampleInspectionTargetsRequest,
    rules_pb2.CheckEligibilityResponse, rules_pb2.CheckRecusalResponse, rules_pb2.CheckTeamResponse,
    rules_pb2.EvaluatePenaltyResponse, rules_pb2.ProposeTeamResponse, rules_pb2.SampleInspectionTargetsResponse)}


class RulesServicer(rules_pb2_grpc.RulesServiceServicer):
    def __init__(self, *, runtime: RulesRuntime, db: Database, clock: Clock, batch_max: int = 5000) -> None:
        self.runtime = runtime
        self.db = db
        self.clock = clock
        self.decider = Decider(clock)
        self.batch_max = batch_max

    # -- evaluation (shared by the RPCs and by replay) ------------------------------------------------------
    async def _evaluate(self, type_name: str, items: list, catalog: Catalog, ev: Evaluator,
                        pinned: RuleSet | None, prefix: str = "") -> list[tuple[m.Decision, pb_message.Message]]:
        d = self.decider
        if type_name == "bjsv.rules.v1.CheckEligibilityRequest":
            decs = await d.eligibility(catalog, ev, from_proto_eligibility(items, prefix), pinned)
            return [(x, rules_pb2.CheckEligibilityResponse(decision=to_proto_decision(x))) for x in decs]
        if type_name == "bjsv.rules.v1.CheckRecusalRequest":
            decs = await d.recusal(catalog, ev, from_proto_recusal(items, prefix), pinned)
            return [(x, rules_pb2.CheckRecusalResponse(decision=to_proto_decision(x))) for x in decs]
        if type_name == "bjsv.rules.v1.CheckTeamRequest":
            decs = await d.team(catalog, ev, from_proto_team(items, prefix), pinned)
            return [(x, rules_pb2.CheckTeamResponse(decision=to_proto_decision(x),
                                                    recommended_team_size=x.recommended_team_size,
                                                    member_count=x.member_count)) for x in decs]
        if type_name == "bjsv.rules.v1.EvaluatePenaltyRequest":
            decs = await d.penalty(catalog, ev, from_proto_penalty(items, prefix), pinned)
            out = []
            for x in decs:
                r = x.recommendation
                out.append((x, rules_pb2.EvaluatePenaltyResponse(
                    decision=to_proto_decision(x), recommendation=rules_pb2.PenaltyRecommendation(
                        article=r.article, rung=r.rung, sanction=r.sanction, sanction_text=r.sanction_text,
                        immediate_report=r.immediate_report, serious=r.serious))))
            return out
        if type_name == "bjsv.rules.v1.ProposeTeamRequest":
            return [await self._propose(items[0], catalog, ev, pinned)]
        if type_name == "bjsv.rules.v1.SampleInspectionTargetsRequest":
            return [self._sample(items[0], catalog, pinned)]
        raise ValueError(type_name)

    async def _propose(self, r: rules_pb2.ProposeTeamRequest, catalog: Catalog, ev: Evaluator,
                       pinned: RuleSet | None) -> tuple[m.Decision, pb_message.Message]:
        v = _Violations()
        _agency(r.dispatching_agency, "dispatching_agency", v)
        plan = from_proto_plan(r.plan, "plan", v)
        session = from_proto_session(r.session, "session", v)
        day = _date(r.as_of_date, "as_of_date", v)
        if r.team_size < 0:
            v.add("team_size", "人数不能为负数")
        entries = []
        for i, p in enumerate(r.pool):
            if not p.name:
                v.add(f"pool[{i}].name", _REQUIRED)
            entries.append((p.name, p.recent_dispatch_count))
        v.raise_if_any()

        def load(i: int) -> m.Supervisor:
            lv = _Violations()
            s = from_proto_supervisor(r.pool[i], f"pool[{i}]", lv)
            lv.raise_if_any()
            return s

        # digest of the draw input without the seed (pool, plan, session, date): one serialisation, no copy
        seed, r.seed = r.seed, ""
        digest = hashlib.sha256(r.SerializeToString(deterministic=True)).hexdigest()
        r.seed = seed
        draw = await draws.propose_team(
            self.decider, catalog, ev, agency=r.dispatching_agency, plan=plan, session=session, as_of=day,
            pool=entries, load=load, team_size=r.team_size, seed=r.seed, pool_digest=digest, pinned=pinned)
        resp = rules_pb2.ProposeTeamResponse(
            team=draw.team, seed=draw.seed, pool_digest=digest, eligible_count=draw.eligible_count,
            evaluated_count=draw.evaluated_count,
            exclusions=[rules_pb2.Exclusion(supervisor=n, rule_ids=ids) for n, ids in draw.exclusions.items()],
            decision=to_proto_decision(draw.decision))
        return draw.decision, resp

    def _sample(self, r: rules_pb2.SampleInspectionTargetsRequest, catalog: Catalog,
                pinned: RuleSet | None) -> tuple[m.Decision, pb_message.Message]:
        v = _Violations()
        day = _date(r.as_of_date, "as_of_date", v)
        if r.sample_size < 0:
            v.add("sample_size", "抽取数量不能为负数")
        if not 0 <= r.sample_ratio <= 1:
            v.add("sample_ratio", "抽取比例应在 0 至 1 之间")
        names = []
        for i, p in enumerate(r.plans):
            if not p.name:
                v.add(f"plans[{i}].name", _REQUIRED)
            names.append(p.name)
        v.raise_if_any()
        digest = hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()
        draw = draws.sample_inspection_targets(
            self.decider, catalog, plans=names, sample_size=r.sample_size, sample_ratio=r.sample_ratio,
            seed=r.seed, as_of=day, subject=r.requesting_agency or "plans", pool_digest=digest, pinned=pinned)
        resp = rules_pb2.SampleInspectionTargetsResponse(plans=draw.plans, seed=draw.seed, pool_digest=digest,
                                                         decision=to_proto_decision(draw.decision))
        return draw.decision, resp

    async def _decide_and_log(self, items: list, prefix: str = "") -> list[pb_message.Message]:
        if not items:
            return []
        type_name = items[0].DESCRIPTOR.full_name
        async with self.runtime.use() as gen:
            results = await self._evaluate(type_name, items, gen.catalog, gen.pool, None, prefix)
        trace, actor = context.current_trace_id(), context.current_caller().org
        logged, responses = [], []
        for item, (dec, resp) in zip(items, results, strict=True):
            data = item.SerializeToString(deterministic=True)
            did = str(uuid.uuid4())
            resp.decision.name = f"decisions/{did}"
            resp.decision.input_digest = digest = hashlib.sha256(data).hexdigest()
            logged.append(LoggedDecision(
                row={"id": did, "kind": dec.kind, "outcome": dec.outcome, "subject": dec.subject,
                     "as_of_date": dec.as_of.isoformat(), "ruleset_id": dec.ruleset_id,
                     "ruleset_version": dec.ruleset_version, "evaluated_at": dec.evaluated_at,
                     "input_digest": digest, "input_type": type_name, "input": data,
                     "result_type": resp.DESCRIPTOR.full_name, "result": resp.SerializeToString(),
                     "actor": actor, "trace_id": trace},
                event_type="decision.made", event_subject=resp.decision.name, payload=decision_made(resp, dec)))
            responses.append(resp)
        await self.db.write(repository.log_decisions, decisions=logged)
        return responses

    def _batch(self, items, name: str) -> list:
        if len(items) > self.batch_max:
            raise InvalidArgument("BATCH_TOO_LARGE", [FieldViolation(
                name, f"每次最多{self.batch_max}项，本次{len(items)}项，请分批提交")])
        return list(items)

    # -- RPCs --------------------------------------------------------------------------------------------
    async def CheckEligibility(self, request, context_):
        return (await self._decide_and_log([request]))[0]

    async def BatchCheckEligibility(self, request, context_):
        return rules_pb2.BatchCheckEligibilityResponse(
            responses=await self._decide_and_log(self._batch(request.requests, "requests"), "requests"))

    async def CheckRecusal(self, request, context_):
        return (await self._decide_and_log([request]))[0]

    async def BatchCheckRecusal(self, request, context_):
        return rules_pb2.BatchCheckRecusalResponse(
            responses=await self._decide_and_log(self._batch(request.requests, "requests"), "requests"))

    async def CheckTeam(self, request, context_):
        return (await self._decide_and_log([request]))[0]

    async def BatchCheckTeam(self, request, context_):
        return rules_pb2.BatchCheckTeamResponse(
            responses=await self._decide_and_log(self._batch(request.requests, "requests"), "requests"))

    async def EvaluatePenalty(self, request, context_):
        return (await self._decide_and_log([request]))[0]

    async def BatchEvaluatePenalty(self, request, context_):
        return rules_pb2.BatchEvaluatePenaltyResponse(
            responses=await self._decide_and_log(self._batch(request.requests, "requests"), "requests"))

    async def ProposeTeam(self, request, context_):
        if not request.seed:
            request.seed = draws.new_seed()  # logged with the input, so the draw can be re-run exactly
        return (await self._decide_and_log([request]))[0]

    async def SampleInspectionTargets(self, request, context_):
        if not request.seed:
            request.seed = draws.new_seed()
        return (await self._decide_and_log([request]))[0]

    async def _row(self, name: str):
        if not name.startswith("decisions/"):
            raise InvalidArgument("BAD_NAME", [FieldViolation("name", "应为 decisions/<id>")])
        row = await self.db.read(repository.get_decision, decision_id=name.split("/", 1)[1])
        if row is None:
            raise NotFound(name)
        return row

    async def GetDecision(self, request, context_):
        row = await self._row(request.name)
        result = _TYPES[row.result_type].FromString(row.result)
        item = _TYPES[row.input_type].FromString(row.input)
        return rules_pb2.GetDecisionResponse(
            decision=result.decision, actor=row.actor, trace_id=row.trace_id,
            input_json=json_format.MessageToJson(item, preserving_proto_field_name=True, sort_keys=True,
                                                 ensure_ascii=False))

    async def ListDecisions(self, request, context_):
        size = request.page_size or 50
        if not 0 < size <= 500:
            raise InvalidArgument("BAD_PAGE_SIZE", [FieldViolation("page_size", "应在 1 至 500 之间")])
        before = None
        if request.page_token:
            try:
                before = int(request.page_token)
            except ValueError:
                raise InvalidArgument("BAD_PAGE_TOKEN", [FieldViolation("page_token", "无效的分页标记")]) from None
        rows = await self.db.read(repository.list_decisions, subject=request.subject, kind=request.kind,
                                  before_seq=before, limit=size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return rules_pb2.ListDecisionsResponse(
            decisions=[_TYPES[r.result_type].FromString(r.result).decision for r in rows],
            next_page_token=str(rows[-1].seq) if more else "")

    async def _ruleset_for_version(self, version: str) -> RuleSet:
        known = self.runtime.known.get(version)
        if known is not None:
            return known[0]
        row = await self.db.read(repository.get_ruleset_version, version=version)
        if row is None:
            raise NotFound(f"rulesets/{version}")
        try:
            rs = build_ruleset(json.loads(row.source), json.loads(row.overrides), origin=f"rulesets/{version}")
        except RuleSetError as exc:
            raise NotFound(f"rulesets/{version}", f"规则集版本 {version} 无法重建：{exc}") from None
        if rs.version != version:
            raise NotFound(f"rulesets/{version}", f"规则集版本 {version} 重建后内容不一致")
        return rs

    async def ReplayDecision(self, request, context_):
        row = await self._row(request.name)
        original = _TYPES[row.result_type].FromString(row.result)
        item = _TYPES[row.input_type].FromString(row.input)
        rs = await self._ruleset_for_version(row.ruleset_version)
        catalog = Catalog((rs,), "")
        async with self.runtime.replay_pool(rs) as pool:
            (_dec, replayed), = await self._evaluate(row.input_type, [item], catalog, pool, rs)
        replayed.decision.input_digest = original.decision.input_digest
        return rules_pb2.ReplayDecisionResponse(
            original=original.decision, replayed=replayed.decision,
            identical=_strip_volatile(original) == _strip_volatile(replayed))

    async def GetRuleSet(self, request, context_):
        if request.version:
            rs = await self._ruleset_for_version(request.version)
            loaded = self.runtime.known.get(request.version, (None, None))[1]
            return rules_pb2.GetRuleSetResponse(rule_set=to_proto_ruleset(rs, loaded))
        v = _Violations()
        day = _date(request.as_of_date, "as_of_date", v, required=False) or self.clock.today()
        v.raise_if_any()
        async with self.runtime.use() as gen:
            rs = gen.catalog.in_force(day)
            return rules_pb2.GetRuleSetResponse(rule_set=to_proto_ruleset(rs, self.runtime.known[rs.version][1]))

    async def ReloadRuleSet(self, request, context_):
        result = await self.runtime.reload()
        gen = result.generation
        return rules_pb2.ReloadRuleSetResponse(
            changed=result.changed, previous_versions=list(result.previous_versions),
            rule_sets=[to_proto_ruleset(rs, self.runtime.known[rs.version][1]) for rs in gen.catalog.rulesets])


def on_loaded_hook(db: Database) -> Callable:
    """Store every newly served rule-set version (for replay) and publish `ruleset.loaded`."""

    async def hook(gen: Generation, previous: Catalog | None) -> None:
        prev = {rs.id: rs.version for rs in previous.rulesets} if previous else {}
        events = [("ruleset.loaded", f"rulesets/{rs.id}", ruleset_loaded(rs, prev.get(rs.id, ""), gen.loaded_at))
                  for rs in gen.catalog.rulesets if prev.get(rs.id) != rs.version]
        await db.write(repository.save_ruleset_versions, rulesets=list(gen.catalog.rulesets),
                       loaded_at=gen.loaded_at, events=events)

    return hook
