"""Decision-log and rule-set-version persistence. Functions take the session first (common.db units of work).

`log_decisions` writes a whole batch in one transaction with Core executemany (a 5,000-item batch is one
INSERT for the decisions and one for their outbox events), keeping the outbox envelope exactly as
`common.events.record_event` builds it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import sqlalchemy as sa
from google.protobuf import message as pb_message
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.orm import Session

from bjsv.events.v1 import envelope_pb2
from common import context
from common.events import OUTBOX, platform_tables, subject_for
from services.rules.domain.ruleset import RuleSet
from services.rules.storage.models import Base, DecisionRow, RuleSetVersionRow

_DECISION = DecisionRow.__table__
_VERSION = RuleSetVersionRow.__table__
_OUTBOX = platform_tables(Base.metadata)[OUTBOX]


def record_events_bulk(session: Session, events: list[tuple[str, str, pb_message.Message]]) -> None:
    """Bulk form of common.events.record_event: (type, subject, payload) → outbox rows, one executemany."""
    if not events:
        return
    source = session.info["service"]
    now = dt.datetime.now(dt.UTC)
    ts = Timestamp()
    ts.FromDatetime(now)
    trace, actor = context.current_trace_id(), context.current_caller().org
    rows = []
    for type_, subject, payload in events:
        env = envelope_pb2.EventEnvelope(event_id=str(uuid.uuid4()), type=type_, occurred_time=ts, source=source,
                                         subject=subject, trace_id=trace, actor=actor)
        env.payload.Pack(payload)
        rows.append({"event_id": env.event_id, "nats_subject": subject_for(source, type_),
                     "envelope": env.SerializeToString(), "trace_id": trace, "created_at": now})
    session.execute(_OUTBOX.insert(), rows)


def log_decisions(session: Session, *, rows: list[dict], outbox: list[dict]) -> None:
    """The decisions and their `decision.made` outbox rows (envelopes built by codec.name_and_pack), one
    transaction, one INSERT each."""
    if rows:
        session.execute(_DECISION.insert(), rows)
    if outbox:
        session.execute(_OUTBOX.insert(), outbox)


def get_decision(session: Session, *, decision_id: str) -> DecisionRow | None:
    return session.execute(sa.select(DecisionRow).where(DecisionRow.id == decision_id)).scalar_one_or_none()


def list_decisions(session: Session, *, subject: str, kind: int, before_seq: int | None,
                   limit: int) -> list[DecisionRow]:
    q = sa.select(DecisionRow).order_by(DecisionRow.seq.desc()).limit(limit)
    if subject:
        q = q.where(DecisionRow.subject == subject)
    if kind:
        q = q.where(DecisionRow.kind == kind)
    if before_seq is not None:
        q = q.where(DecisionRow.seq < before_seq)
    return list(session.execute(q).scalars())


def save_ruleset_versions(session: Session, *, rulesets: list[RuleSet], loaded_at: dt.datetime,
                          events: list[tuple[str, str, pb_message.Message]]) -> list[str]:
    """Store versions not seen before (idempotent); returns the versions that were new."""
    new = []
    for rs in rulesets:
        if session.get(RuleSetVersionRow, rs.version) is not None:
            continue
        overrides = {k: p.value for k, p in rs.parameters.items() if p.overridden}
        session.add(RuleSetVersionRow(version=rs.version, ruleset_id=rs.id,
                                      effective_from=rs.effective_from.isoformat(),
                                      source=json.dumps(rs.source, ensure_ascii=False, sort_keys=True),
                                      overrides=json.dumps(overrides, ensure_ascii=False, sort_keys=True),
                                      first_loaded_at=loaded_at))
        new.append(rs.version)
    record_events_bulk(session, events)
    return new


def get_ruleset_version(session: Session, *, version: str) -> RuleSetVersionRow | None:
    return session.get(RuleSetVersionRow, version)
