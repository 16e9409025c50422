"""Events the rules service publishes (stream BJSV_RULES, subjects bjsv.rules.<type>); it consumes none.

- `decision.made`  (subject `decisions/<id>`, payload DecisionMade) — every logged decision (D15).
- `ruleset.loaded` (subject `rulesets/<id>`, payload RuleSetLoaded) — a new rule-set version in service.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf import message as pb_message
from google.protobuf.timestamp_pb2 import Timestamp

from bjsv.rules.v1 import events_pb2
from services.rules.domain import model as m
from services.rules.domain.ruleset import RuleSet

DECISION_MADE = "decision.made"
RULESET_LOADED = "ruleset.loaded"


def decision_made(resp: pb_message.Message, dec: m.Decision) -> events_pb2.DecisionMade:
    d = resp.decision
    rec = dec.recommendation
    return events_pb2.DecisionMade(
        name=d.name, kind=d.kind, outcome=d.outcome, subject=d.subject, as_of_date=d.as_of_date,
        ruleset_id=d.ruleset_id, ruleset_version=d.ruleset_version, rule_ids=[f.rule_id for f in d.findings],
        evaluation_time=d.evaluation_time, recommended_sanction=rec.sanction if rec else 0,
        immediate_report=rec.immediate_report if rec else False)


def ruleset_loaded(rs: RuleSet, previous: str, at: dt.datetime) -> events_pb2.RuleSetLoaded:
    ts = Timestamp()
    ts.FromDatetime(at)
    return events_pb2.RuleSetLoaded(ruleset_id=rs.id, version=rs.version, previous_version=previous,
                                    effective_from=rs.effective_from.isoformat(), loaded_time=ts)
