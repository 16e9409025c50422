"""Events the rules service publishes (stream BJSV_RULES, subjects bjsv.rules.<type>); it consumes none.

- `decision.made`  (subject `decisions/<id>`, payload DecisionMade) — every logged decision (D15); the
  payload is built next to the decision (services.rules.codec.decision_made, in the engine workers).
- `ruleset.loaded` (subject `rulesets/<id>`, payload RuleSetLoaded) — a new rule-set version in service.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

from bjsv.rules.v1 import events_pb2
from services.rules.domain.ruleset import RuleSet

DECISION_MADE = "decision.made"
RULESET_LOADED = "ruleset.loaded"


def ruleset_loaded(rs: RuleSet, previous: str, at: dt.datetime) -> events_pb2.RuleSetLoaded:
    ts = Timestamp()
    ts.FromDatetime(at)
    return events_pb2.RuleSetLoaded(
        ruleset_id=rs.id,
        version=rs.version,
        previous_version=previous,
        effective_from=rs.effective_from.isoformat(),
        loaded_time=ts,
    )
