"""gRPC servicer of bjsv.rules.v1.RulesService: request in, logged and published decision out, replay.

Thin by design. Proto ⇄ domain conversion lives in services.rules.codec (not here) because the batch
decisions run end to end inside the engine worker processes — the front serialises request items, hands
them to the workers, and writes what they return (decision rows + `decision.made` outbox rows) to the
decision log in one transaction. ProposeTeam runs in a worker too (its draw asks the engine about candidates).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any, cast

import grpc
from google.protobuf import json_format
from google.protobuf import message as pb_message

from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from common import api, context
from common.clock import Clock
from common.db import Database
from common.errors import FieldViolation, InvalidArgument, NotFound
from common.events import timestamp
from common.workdays import WorkdayCalendar
from services.rules.codec import (
    BATCH_KINDS,
    PROPOSE_TEAM,
    REQUIRED,
    Violations,
    date_field,
    name_and_pack,
    to_proto_decision,
)
from services.rules.decision_log import DecisionLogWriter
from services.rules.domain import draws
from services.rules.domain import model as m
from services.rules.domain.deadlines import DEADLINE_PARAMETER, due_date
from services.rules.domain.decisions import Decider
from services.rules.domain.ruleset import Catalog, RuleSet, RuleSetError, build_ruleset
from services.rules.events import ruleset_loaded
from services.rules.runtime import Generation, RulesRuntime
from services.rules.storage import repository

# ----------------------------------------------------------------------------------------------------------
# to_proto_* for rule sets; response helpers


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def to_proto_ruleset(rs: RuleSet, loaded_at: dt.datetime | None) -> rules_pb2.RuleSet:
    kinds = {"team_member": "team"}
    return rules_pb2.RuleSet(
        id=rs.id,
        version=rs.version,
        effective_from=rs.effective_from.isoformat(),
        effective_until=api.format_date(rs.effective_until),
        title=rs.title,
        rules=[
            rules_pb2.RuleDeclaration(
                id=r.id,
                article=r.article,
                interpretation=r.interpretation,
                severity=cast(rules_pb2.Severity, r.severity),
                message=r.message,
                valid_from=r.valid_from.isoformat(),
                valid_until=api.format_date(r.valid_until),
                decision_kind=kinds.get(r.kind, r.kind),
                description=r.description,
            )
            for r in rs.rules
        ],
        parameters=[
            rules_pb2.Parameter(
                name=p.name,
                value_json=_json(p.value),
                article=p.article,
                interpretation=p.interpretation,
                description=p.description,
                overridden=p.overridden,
                default_json=_json(p.default),
            )
            for p in rs.parameters.values()
        ],
        loaded_time=timestamp(loaded_at) if loaded_at else None,
        interpretations=[
            rules_pb2.Interpretation(
                id=d.id,
                article=d.article,
                meaning=d.meaning,
                parameters=d.parameters,
                rules=d.rules,
                applied_by=d.applied_by,
            )
            for d in rs.interpretations
        ],
    )


def _strip_volatile(resp: Any) -> bytes:  # any rules response: each has a `decision` (see _TYPES)
    """Response bytes without decision name and evaluation time (what a replay must reproduce)."""
    copy = type(resp)()
    copy.CopyFrom(resp)
    copy.decision.name = ""
    copy.decision.ClearField("evaluation_time")
    return copy.SerializeToString(deterministic=True)


# ----------------------------------------------------------------------------------------------------------


# Message classes by full name, requests and responses alike (`.decision` exists on the responses only).
_TYPES: dict[str, Any] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (
        rules_pb2.CheckEligibilityRequest,
        rules_pb2.CheckRecusalRequest,
        rules_pb2.CheckTeamRequest,
        rules_pb2.EvaluatePenaltyRequest,
        rules_pb2.EvaluateRecordRequest,
        rules_pb2.EvaluateFeedbackRequest,
        rules_pb2.ProposeTeamRequest,
        rules_pb2.SampleInspectionTargetsRequest,
        rules_pb2.CheckEligibilityResponse,
        rules_pb2.CheckRecusalResponse,
        rules_pb2.CheckTeamResponse,
        rules_pb2.EvaluatePenaltyResponse,
        rules_pb2.EvaluateRecordResponse,
        rules_pb2.EvaluateFeedbackResponse,
        rules_pb2.ProposeTeamResponse,
        rules_pb2.SampleInspectionTargetsResponse,
    )
}


class RulesServicer(rules_pb2_grpc.RulesServiceServicer):
    def __init__(
        self,
        *,
        runtime: RulesRuntime,
        db: Database,
        clock: Clock,
        calendar: Callable[[], WorkdayCalendar],
        batch_max: int = 5000,
    ) -> None:
        self.runtime = runtime
        self.calendar = calendar  # settings.calendar_file, re-read when the file changes (common.workdays)
        self.db = db
        self.clock = clock
        self.decider = Decider(clock)
        self.batch_max = batch_max
        self.log = DecisionLogWriter(db)

    # -- evaluation (shared by the RPCs and by replay) ------------------------------------------------------
    async def _decide(
        self,
        type_name: str,
        items: list,
        blobs: list[bytes],
        catalog: Catalog,
        pool,
        pinned: RuleSet | None,
        prefix: str = "",
    ) -> list[tuple[dict, dict]]:
        """(decision-log row, outbox row) per item. Batch kinds run end to end in the engine workers
        (codec.decide_blobs), and so does ProposeTeam (its draw asks the engine about candidates, so it runs
        next to the engine); SampleInspectionTargets needs no engine and runs here."""
        trace, actor = context.current_trace_id(), context.current_caller().org
        if type_name in BATCH_KINDS or type_name == PROPOSE_TEAM:  # end to end in an engine worker
            decided = await pool.decide(
                type_name, blobs, pinned.version if pinned else None, prefix, trace=trace, actor=actor
            )
            for blob, (row, _outbox) in zip(blobs, decided, strict=True):
                row.setdefault("input", blob)  # a ProposeTeam row comes back with its canonical input
            return decided
        if type_name == "bjsv.rules.v1.SampleInspectionTargetsRequest":
            dec, resp = self._sample(items[0], catalog, pinned)
        else:
            raise ValueError(type_name)
        packed = name_and_pack(blobs[0], type_name, dec, resp, trace=trace, actor=actor)
        return [(packed.row, packed.outbox)]

    def _sample(
        self, r: rules_pb2.SampleInspectionTargetsRequest, catalog: Catalog, pinned: RuleSet | None
    ) -> tuple[m.Decision, pb_message.Message]:
        v = Violations()
        day = date_field(r.as_of_date, "as_of_date", v)
        if r.sample_size < 0:
            v.add("sample_size", "抽取数量不能为负数")
        if not 0 <= r.sample_ratio <= 1:
            v.add("sample_ratio", "抽取比例应在 0 至 1 之间")
        names = []
        for i, p in enumerate(r.plans):
            if not p.name:
                v.add(f"plans[{i}].name", REQUIRED)
            names.append(p.name)
        v.raise_if_any()
        digest = hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()
        draw = draws.sample_inspection_targets(
            self.decider,
            catalog,
            plans=names,
            sample_size=r.sample_size,
            sample_ratio=r.sample_ratio,
            seed=r.seed,
            as_of=day,
            subject=r.requesting_agency or "plans",
            pool_digest=digest,
            pinned=pinned,
        )
        resp = rules_pb2.SampleInspectionTargetsResponse(
            plans=draw.plans, seed=draw.seed, pool_digest=digest, decision=to_proto_decision(draw.decision)
        )
        return draw.decision, resp

    async def _decide_and_log(
        self, items: list, prefix: str = "", *, type_name: str = "", blobs: list[bytes] | None = None
    ) -> list[bytes]:
        """Decide, log every decision with its input and publish `decision.made`; response bytes per item."""
        if not items:
            return []
        type_name = type_name or items[0].DESCRIPTOR.full_name
        if blobs is None:
            blobs = [it.SerializeToString(deterministic=True) for it in items]
        async with self.runtime.use() as gen:
            decided = await self._decide(type_name, items, blobs, gen.catalog, gen.pool, None, prefix)
        parts: dict[str, bytes] = {}
        for row, _ in decided:
            parts.update(row.pop("_parts", None) or {})  # ProposeTeam: the pool, stored once per digest
        await self.log.append([r for r, _ in decided], [o for _, o in decided], parts)
        return [row["result"] for row, _ in decided]

    # The decision RPCs answer with bytes (no response serializer, see add_to_server): the response each
    # worker serialised and logged is what the caller receives, byte for byte, without a parse and re-encode.
    async def _single(self, request) -> bytes:
        return (await self._decide_and_log([request]))[0]

    async def _many(self, request) -> bytes:
        results = await self._decide_and_log(self._batch(request.requests, "requests"), "requests")
        # a repeated field 1 of messages is the concatenation of (tag 0x0A, length, bytes)
        return b"".join(b"\x0a" + _varint(len(r)) + r for r in results)

    def _batch(self, items, name: str) -> list:
        if len(items) > self.batch_max:
            raise InvalidArgument(
                "BATCH_TOO_LARGE", [FieldViolation(name, f"每次最多{self.batch_max}项，本次{len(items)}项，请分批提交")]
            )
        return list(items)

    # -- RPCs --------------------------------------------------------------------------------------------
    async def CheckEligibility(self, request, context_):
        return await self._single(request)

    async def BatchCheckEligibility(self, request, context_):
        return await self._many(request)

    async def CheckRecusal(self, request, context_):
        return await self._single(request)

    async def BatchCheckRecusal(self, request, context_):
        return await self._many(request)

    async def CheckTeam(self, request, context_):
        return await self._single(request)

    async def BatchCheckTeam(self, request, context_):
        return await self._many(request)

    async def EvaluatePenalty(self, request, context_):
        return await self._single(request)

    async def BatchEvaluatePenalty(self, request, context_):
        return await self._many(request)

    async def EvaluateRecord(self, request, context_):
        return await self._single(request)

    async def EvaluateFeedback(self, request, context_):
        return await self._single(request)

    async def ComputeDueDate(self, request, context_):
        v = Violations()
        end = date_field(request.supervision_end_date, "supervision_end_date", v)
        v.raise_if_any()
        async with self.runtime.use() as gen:
            rs = gen.catalog.in_force(end)
        due, days = due_date(rs, end, self.calendar())
        p = rs.parameters[DEADLINE_PARAMETER]
        return rules_pb2.ComputeDueDateResponse(
            due_date=due.isoformat(),
            working_days=days,
            ruleset_id=rs.id,
            ruleset_version=rs.version,
            article=f"{p.article}（{p.interpretation}）",
        )

    async def ProposeTeam(self, request: bytes, context_):
        """`request` is the raw ProposeTeamRequest (add_to_server): a 5,000-supervisor pool is ~1.1 MB, and
        the engine worker parses it anyway — parsing and re-serialising it here cost ~7 ms of front CPU."""
        (result,) = await self._decide_and_log([request], type_name=PROPOSE_TEAM, blobs=[request])
        return result

    async def SampleInspectionTargets(self, request, context_):
        if not request.seed:
            request.seed = draws.new_seed()
        return await self._single(request)

    async def _row(self, name: str):
        """(decision-log row, complete input bytes)."""
        decision_id = api.parse_name(name, "decisions")
        found = await self.db.read(repository.get_decision_with_input, decision_id=decision_id)
        if found is None:
            raise NotFound(name)
        return found

    async def GetDecision(self, request, context_):
        row, input_bytes = await self._row(request.name)
        result = _TYPES[row.result_type].FromString(row.result)
        item = _TYPES[row.input_type].FromString(input_bytes)
        return rules_pb2.GetDecisionResponse(
            decision=result.decision,
            actor=row.actor,
            trace_id=row.trace_id,
            input_json=json_format.MessageToJson(
                item, preserving_proto_field_name=True, sort_keys=True, ensure_ascii=False
            ),
        )

    async def ListDecisions(self, request, context_):
        size = api.page_size(request.page_size)
        before = api.decode_page_token(request.page_token, listing="rules.ListDecisions", kind=int)
        rows = await self.db.read(
            repository.list_decisions, subject=request.subject, kind=request.kind, before_seq=before, limit=size + 1
        )
        more = len(rows) > size
        rows = rows[:size]
        return rules_pb2.ListDecisionsResponse(
            decisions=[_TYPES[r.result_type].FromString(r.result).decision for r in rows],
            next_page_token=api.encode_page_token(rows[-1].seq, listing="rules.ListDecisions") if more else "",
        )

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
        row, input_bytes = await self._row(request.name)
        original = _TYPES[row.result_type].FromString(row.result)
        item = _TYPES[row.input_type].FromString(input_bytes)
        rs = await self._ruleset_for_version(row.ruleset_version)
        async with self.runtime.replay_pool(rs) as pool:
            ((new_row, _event),) = await self._decide(
                row.input_type, [item], [input_bytes], Catalog((rs,), ""), pool, rs
            )
        replayed = _TYPES[row.result_type].FromString(new_row["result"])
        replayed.decision.name = ""  # replays are not logged
        return rules_pb2.ReplayDecisionResponse(
            original=original.decision,
            replayed=replayed.decision,
            identical=_strip_volatile(original) == _strip_volatile(replayed),
        )

    async def GetRuleSet(self, request, context_):
        if request.version:
            rs = await self._ruleset_for_version(request.version)
            loaded = self.runtime.known.get(request.version, (None, None))[1]
            return rules_pb2.GetRuleSetResponse(rule_set=to_proto_ruleset(rs, loaded))
        day = api.parse_date(request.as_of_date, "as_of_date", default=self.clock.today())
        async with self.runtime.use() as gen:
            rs = gen.catalog.in_force(day)
            return rules_pb2.GetRuleSetResponse(rule_set=to_proto_ruleset(rs, self.runtime.known[rs.version][1]))

    async def ReloadRuleSet(self, request, context_):
        result = await self.runtime.reload()
        gen = result.generation
        return rules_pb2.ReloadRuleSetResponse(
            changed=result.changed,
            previous_versions=list(result.previous_versions),
            rule_sets=[to_proto_ruleset(rs, self.runtime.known[rs.version][1]) for rs in gen.catalog.rulesets],
        )


# RPCs whose handler returns the response already serialised (the decision log's `result` bytes).
_BYTES_RESPONSE = (
    "CheckEligibility",
    "BatchCheckEligibility",
    "CheckRecusal",
    "BatchCheckRecusal",
    "CheckTeam",
    "BatchCheckTeam",
    "EvaluatePenalty",
    "BatchEvaluatePenalty",
    "EvaluateRecord",
    "EvaluateFeedback",
    "ProposeTeam",
    "SampleInspectionTargets",
)


def add_to_server(servicer: RulesServicer, server) -> None:
    """rules_pb2_grpc.add_RulesServiceServicer_to_server, except that ProposeTeam gets its request as bytes
    (no request deserializer): the worker that decides it parses it (services.rules.codec.decide_blobs);
    and the decision RPCs return bytes (no response serializer): _single/_many."""

    class _Capture:
        def __init__(self) -> None:
            self.handlers: dict = {}

        def add_generic_rpc_handlers(self, _handlers) -> None:
            pass

        def add_registered_method_handlers(self, _service, handlers) -> None:
            self.handlers = dict(handlers)

    cap = _Capture()
    rules_pb2_grpc.add_RulesServiceServicer_to_server(servicer, cap)
    handlers = cap.handlers
    handlers["ProposeTeam"] = handlers["ProposeTeam"]._replace(request_deserializer=None)
    for name in _BYTES_RESPONSE:
        handlers[name] = handlers[name]._replace(response_serializer=None)
    service = "bjsv.rules.v1.RulesService"
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


def on_loaded_hook(db: Database) -> Callable:
    """Store every newly served rule-set version (for replay) and publish `ruleset.loaded`."""

    async def hook(gen: Generation, previous: Catalog | None) -> None:
        prev = {rs.id: rs.version for rs in previous.rulesets} if previous else {}
        events = [
            ("ruleset.loaded", f"rulesets/{rs.id}", ruleset_loaded(rs, prev.get(rs.id, ""), gen.loaded_at))
            for rs in gen.catalog.rulesets
            if prev.get(rs.id) != rs.version
        ]
        await db.write(
            repository.save_ruleset_versions,
            rulesets=list(gen.catalog.rulesets),
            loaded_at=gen.loaded_at,
            events=events,
        )

    return hook


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)
