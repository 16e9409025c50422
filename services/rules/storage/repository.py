"""Decision-log and rule-set-version persistence. Functions take the session first (common.db units of work).

`log_decisions` writes a whole batch in one transaction with Core executemany (a 5,000-item batch is one
INSERT for the decisions and one for their outbox events), keeping the outbox envelope exactly as
`common.events.record_event` builds it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import cast

import sqlalchemy as sa
from google.protobuf import message as pb_message
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from common import context
from common.events import OUTBOX, insert_outbox, outbox_row, platform_tables
from services.rules.domain.ruleset import RuleSet
from services.rules.storage.models import Base, DecisionRow, InputPartRow, RuleSetVersionRow

_DECISION = cast(sa.Table, DecisionRow.__table__)  # __table__ is typed as FromClause; a mapped class has a Table
_VERSION = cast(sa.Table, RuleSetVersionRow.__table__)
_PART = cast(sa.Table, InputPartRow.__table__)
_UPSERT: dict[str, Callable[[sa.Table], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}
_OUTBOX = platform_tables(Base.metadata)[OUTBOX]


def record_events_bulk(session: Session, events: list[tuple[str, str, pb_message.Message]]) -> None:
    """Bulk form of common.events.record_event: (type, subject, payload) → outbox rows, one executemany."""
    source, now = session.info["service"], dt.datetime.now(dt.UTC)
    trace, actor = context.current_trace_id(), context.current_caller().org
    insert_outbox(
        session,
        [
            outbox_row(
                source=source, type=type_, subject=subject, payload=payload, trace_id=trace, actor=actor, occurred=now
            )
            for type_, subject, payload in events
        ],
    )


def save_input_parts(session: Session, parts: dict[str, bytes]) -> None:
    """Store shared input parts not stored yet (content-addressed: an existing digest has the same bytes)."""
    if not parts:
        return
    have = set(session.execute(sa.select(_PART.c.digest).where(_PART.c.digest.in_(list(parts)))).scalars())
    missing = [{"digest": d, "data": b} for d, b in parts.items() if d not in have]
    if missing:
        insert = _UPSERT.get(session.get_bind().dialect.name)
        if insert is not None:  # a concurrent writer may store the same part: that is fine
            session.execute(insert(_PART).on_conflict_do_nothing(), missing)
        else:
            session.execute(_PART.insert(), missing)


def log_decisions(
    session: Session, *, rows: list[dict], outbox: list[dict], parts: dict[str, bytes] | None = None
) -> None:
    """The decisions and their `decision.made` outbox rows (envelopes built by codec.name_and_pack), one
    transaction, one INSERT each; `parts` = shared input parts the rows refer to (input_part_digest)."""
    save_input_parts(session, parts or {})
    if rows and parts:  # one executemany needs the same columns in every row
        for r in rows:
            r.setdefault("input_part_digest", None)
            r.setdefault("input_part_offset", None)
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        if rows:
            _insert_sqlite(conn, _DECISION, rows)
        insert_outbox(session, outbox, insert=lambda values: _insert_sqlite(conn, _OUTBOX, values))
    else:
        if rows:
            session.execute(_DECISION.insert(), rows)
        insert_outbox(session, outbox)


def _insert_sqlite(conn: sa.Connection, table: sa.Table, values: list[dict]) -> None:
    """INSERT … executemany straight on the DBAPI cursor of this transaction: SQLAlchemy's per-row parameter
    processing cost more than SQLite itself for a 1,000-decision batch (py-spy). Values are converted exactly
    as SQLAlchemy would: each column type's bind processor, applied once per distinct value for the
    datetimes (a batch shares one evaluation instant) and per value otherwise."""
    names = list(values[0])
    procs = []
    for name in names:
        type_ = table.c[name].type
        proc = type_.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        if proc is not None and isinstance(type_, sa.DateTime):
            cache: dict = {}

            def proc(v, _p=proc, _c=cache):
                out = _c.get(v, _c)
                if out is _c:
                    out = _c[v] = _p(v)
                return out
        elif isinstance(type_, sa.LargeBinary):
            proc = None  # sqlite3 stores bytes as a BLOB as is (the processor only wraps them)
        procs.append(proc)
    conv = [(i, p) for i, p in enumerate(procs) if p is not None]
    params = []
    for v in values:
        t = [v[n] for n in names]
        for i, p in conv:
            t[i] = p(t[i])
        params.append(tuple(t))
    q = conn.dialect.identifier_preparer
    sql = (
        f"INSERT INTO {q.format_table(table)} ({', '.join(q.quote(n) for n in names)}) "
        f"VALUES ({', '.join('?' * len(names))})"
    )
    conn.exec_driver_sql(sql, params)


def get_decision(session: Session, *, decision_id: str) -> DecisionRow | None:
    return session.execute(sa.select(DecisionRow).where(DecisionRow.id == decision_id)).scalar_one_or_none()


def get_decision_with_input(session: Session, *, decision_id: str) -> tuple[DecisionRow, bytes] | None:
    """The decision and its complete input bytes (a shared part put back where it was cut out)."""
    row = get_decision(session, decision_id=decision_id)
    if row is None:
        return None
    if row.input_part_digest is None:
        return row, row.input
    part = session.execute(sa.select(_PART.c.data).where(_PART.c.digest == row.input_part_digest)).scalar_one()
    at = row.input_part_offset
    return row, row.input[:at] + part + row.input[at:]


def list_decisions(
    session: Session, *, subject: str, kind: int, before_seq: int | None, limit: int
) -> list[DecisionRow]:
    q = sa.select(DecisionRow).order_by(DecisionRow.seq.desc()).limit(limit)
    if subject:
        q = q.where(DecisionRow.subject == subject)
    if kind:
        q = q.where(DecisionRow.kind == kind)
    if before_seq is not None:
        q = q.where(DecisionRow.seq < before_seq)
    return list(session.execute(q).scalars())


def save_ruleset_versions(
    session: Session,
    *,
    rulesets: list[RuleSet],
    loaded_at: dt.datetime,
    events: list[tuple[str, str, pb_message.Message]],
) -> list[str]:
    """Store versions not seen before; returns the versions this call stored. Idempotent and race-free:
    replicas starting together insert the same version at once, and INSERT … ON CONFLICT DO NOTHING lets the
    first one store it while the others skip it, where a read-then-insert would fail one of them."""
    insert = _UPSERT[session.get_bind().dialect.name]
    new = []
    for rs in rulesets:
        overrides = {k: p.value for k, p in rs.parameters.items() if p.overridden}
        row = {
            "version": rs.version,
            "ruleset_id": rs.id,
            "effective_from": rs.effective_from.isoformat(),
            "source": json.dumps(rs.source, ensure_ascii=False, sort_keys=True),
            "overrides": json.dumps(overrides, ensure_ascii=False, sort_keys=True),
            "first_loaded_at": loaded_at,
        }
        statement = insert(_VERSION).values(row).on_conflict_do_nothing(index_elements=["version"])
        # RETURNING names the row only if this INSERT stored it (psycopg reports no rowcount here)
        if session.execute(statement.returning(_VERSION.c.version)).scalar_one_or_none() is not None:
            new.append(rs.version)
    record_events_bulk(session, events)
    return new


def get_ruleset_version(session: Session, *, version: str) -> RuleSetVersionRow | None:
    return session.get(RuleSetVersionRow, version)
