"""Events: the envelope, the transactional outbox and consumer idempotency.

A service never publishes to NATS inside a request. It writes the event into its outbox table in the
same transaction as the state change (`record_event`); `common.bus.OutboxRelay` publishes committed rows
with Nats-Msg-Id = event id. So a crash between commit and publish loses nothing, and a replayed publish
is deduplicated by JetStream.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from google.protobuf import message as pb_message
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bjsv.events.v1 import envelope_pb2
from common import audit, context

M = TypeVar("M", bound=pb_message.Message)

OUTBOX = "outbox"
PROCESSED = "processed_event"
PARKED = "outbox_parked"  # rows the relay gave up on (common.bus.OutboxRelay), for `supervisionctl outbox`
PARK_REASON_MAX = 500
COMMITTED = "outbox_committed"  # session.info key: rows inserted by this transaction (insert_outbox)


def platform_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Add the outbox, parked-row and processed-event tables to a service's metadata (same in every service),
    and the audit chain tables (created by each service's own `00NN_audit_chain` migration)."""
    audit.tables(metadata)
    if OUTBOX in metadata.tables:
        return {name: metadata.tables[name] for name in (OUTBOX, PROCESSED, PARKED)}
    outbox = sa.Table(
        OUTBOX,
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("nats_subject", sa.String(200), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=True),  # also sent as a NATS header, for log correlation
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_outbox_unpublished", "published_at", "seq"),
    )
    processed = sa.Table(
        PROCESSED,
        metadata,
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )
    return {OUTBOX: outbox, PROCESSED: processed, PARKED: parked_table(metadata)}


def parked_table(metadata: sa.MetaData) -> sa.Table:
    """Outbox rows that could not be published (too large, rejected by JetStream): kept whole, with the reason,
    out of the outbox so that the rows behind them flow. Databases migrated before it existed get it from
    `ensure_parked_table` (Database.migrate), so no service's migration chain has to change."""
    if PARKED in metadata.tables:
        return metadata.tables[PARKED]
    return sa.Table(
        PARKED,
        metadata,
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("nats_subject", sa.String(200), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(PARK_REASON_MAX), nullable=False),
    )


_TABLES = platform_tables(sa.MetaData())


def subject_for(source: str, event_type: str) -> str:
    return f"bjsv.{source}.{event_type}"


def outbox_row(
    *,
    source: str,
    type: str,
    subject: str,
    payload: pb_message.Message,
    trace_id: str,
    actor: str,
    occurred: dt.datetime | None = None,
    event_id: str = "",
) -> dict:
    """The outbox row of one event: its envelope serialised, ready to insert (and to publish as is).
    `event_id` defaults to a new UUID; an event that exists once per entity may reuse the entity's id."""
    occurred = occurred or dt.datetime.now(dt.UTC)
    env = envelope_pb2.EventEnvelope(
        event_id=event_id or str(uuid.uuid4()),
        type=type,
        occurred_time=timestamp(occurred),
        source=source,
        subject=subject,
        trace_id=trace_id,
        actor=actor,
    )
    env.payload.Pack(payload)
    return {
        "event_id": env.event_id,
        "nats_subject": subject_for(source, type),
        "envelope": env.SerializeToString(),
        "trace_id": trace_id,
        "created_at": occurred,
    }


_last_stamp: tuple[dt.datetime | None, Timestamp] = (None, Timestamp())


def timestamp(at: dt.datetime) -> Timestamp:
    """`at` as a Timestamp (read-only: copy it into messages); the last one is kept, as a batch of events or
    decisions usually shares one instant."""
    global _last_stamp
    last_at, stamp = _last_stamp
    if last_at != at:
        stamp = Timestamp()
        stamp.FromDatetime(at)
        _last_stamp = (at, stamp)
    return stamp


def record_event(session: Session, *, type: str, subject: str, payload: pb_message.Message) -> str:
    """Write an event into the outbox within the caller's transaction; returns the event id.

    `type` is "<entity>.<verb>" in the past tense ("badge.issued"); `subject` is the resource name of the
    entity ("badges/R1122A001"); `payload` is a message from the service's events.proto. Trace id and
    actor come from the request context.
    """
    row = outbox_row(
        source=session.info["service"],
        type=type,
        subject=subject,
        payload=payload,
        trace_id=context.current_trace_id(),
        actor=context.current_caller().org,
    )
    # Rows are inserted in one statement just before the transaction commits (Database's before_commit
    # hook calls flush_outbox): the same atomicity, far fewer statements for calls emitting many events.
    session.info.setdefault("outbox_rows", []).append(row)
    return row["event_id"]


def insert_outbox(session: Session, rows: list[dict], *, insert: Callable[[list[dict]], None] | None = None) -> None:
    """Insert outbox rows (outbox_row) in the caller's transaction and note them for the hand-over: once the
    transaction commits, Database gives them to the relay in memory (committed_outbox). `insert` replaces the
    plain executemany (e.g. a faster DB-API path for large batches)."""
    if not rows:
        return
    if insert is None:
        session.execute(_TABLES[OUTBOX].insert(), rows)
    else:
        insert(rows)
    session.info.setdefault(COMMITTED, []).extend(rows)


def committed_outbox(session: Session) -> list[dict]:
    """The outbox rows the session's transaction inserted; call after it committed."""
    return session.info.pop(COMMITTED, [])


def flush_outbox(session: Session) -> None:
    insert_outbox(session, session.info.pop("outbox_rows", None) or [])


def discard_outbox(session: Session) -> None:
    session.info.pop("outbox_rows", None)
    session.info.pop(COMMITTED, None)


def mark_processed(session: Session, *, consumer: str, event_id: str) -> bool:
    """Record that `consumer` handled `event_id` in the caller's transaction; False if it already had.

    Call first thing in a handler's write transaction and return early on False: a redelivered or
    replayed event then changes nothing.
    """
    table = _TABLES[PROCESSED]
    seen = session.execute(
        sa.select(table.c.event_id).where(table.c.consumer == consumer, table.c.event_id == event_id)
    ).first()
    if seen:
        return False
    session.execute(table.insert().values(consumer=consumer, event_id=event_id, processed_at=dt.datetime.now(dt.UTC)))
    return True


def unpack(envelope: envelope_pb2.EventEnvelope, message_type: type[M]) -> M:
    msg = message_type()
    if not envelope.payload.Unpack(msg):
        got = envelope.payload.TypeName()
        raise ValueError(f"event {envelope.event_id} carries {got}, not {msg.DESCRIPTOR.full_name}")
    return msg


# -- relay side: read and mark outbox rows --------------------------------------------------------------


def unpublished(
    session: Session, *, limit: int, lock: bool, written_before: dt.datetime | None = None
) -> list[tuple[str, str, bytes, str | None]]:
    """(event id, subject, envelope, trace id) of unpublished rows in outbox order."""
    t = _TABLES[OUTBOX]
    q = sa.select(t.c.event_id, t.c.nats_subject, t.c.envelope, t.c.trace_id)
    q = q.where(t.c.published_at.is_(None))
    if written_before is not None:
        q = q.where(t.c.created_at < written_before)
    q = q.order_by(t.c.seq).limit(limit)
    if lock:
        q = q.with_for_update(skip_locked=True)
    return [tuple(r) for r in session.execute(q)]


def mark_published(session: Session, event_ids: list[str]) -> None:
    t = _TABLES[OUTBOX]
    now = dt.datetime.now(dt.UTC)
    for i in range(0, len(event_ids), 1000):  # bounded statement size
        session.execute(t.update().where(t.c.event_id.in_(event_ids[i : i + 1000])).values(published_at=now))


def park(session: Session, rows: list[tuple[tuple[str, str, bytes, str | None], str]]) -> None:
    """Move outbox rows (row, reason) to the parked table in the caller's transaction. A row another replica
    parked meanwhile is left as it is (a second relay may hold the same row in memory)."""
    if not rows:
        return
    t, p = _TABLES[OUTBOX], _TABLES[PARKED]
    ids = [row[0] for row, _ in rows]
    created = {e: c for e, c in session.execute(sa.select(t.c.event_id, t.c.created_at).where(t.c.event_id.in_(ids)))}
    now = dt.datetime.now(dt.UTC)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(p).on_conflict_do_nothing(index_elements=["event_id"]),
        [
            {
                "event_id": event_id,
                "nats_subject": subject,
                "envelope": envelope,
                "trace_id": trace_id,
                "created_at": created.get(event_id, now),
                "parked_at": now,
                "reason": reason[:PARK_REASON_MAX],
            }
            for (event_id, subject, envelope, trace_id), reason in rows
        ],
    )
    session.execute(t.delete().where(t.c.event_id.in_(ids)))


def list_parked(session: Session) -> list[dict]:
    p = _TABLES[PARKED]
    size = sa.func.length(p.c.envelope)
    q = sa.select(p.c.event_id, p.c.nats_subject, p.c.created_at, p.c.parked_at, p.c.reason, size)
    return [
        {"event_id": r[0], "subject": r[1], "created_at": r[2], "parked_at": r[3], "reason": r[4], "size": r[5]}
        for r in session.execute(q.order_by(p.c.parked_at))
    ]


def unpark(session: Session, event_ids: list[str], *, retry: bool) -> list[str]:
    """Put parked rows back into the outbox (retry: the relay's scan publishes them) or drop them for good;
    returns the event ids found."""
    p = _TABLES[PARKED]
    rows = session.execute(sa.select(p).where(p.c.event_id.in_(event_ids))).mappings().all()
    if retry and rows:
        keep = ("event_id", "nats_subject", "envelope", "trace_id", "created_at")
        session.execute(_TABLES[OUTBOX].insert(), [{k: r[k] for k in keep} for r in rows])
    session.execute(p.delete().where(p.c.event_id.in_([r["event_id"] for r in rows])))
    return [r["event_id"] for r in rows]


def backlog(session: Session) -> tuple[int, dt.datetime | None, int]:
    """(unpublished rows, when the oldest was written, parked rows): the relay's health at a glance."""
    t, p = _TABLES[OUTBOX], _TABLES[PARKED]
    count, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(t.c.created_at)).where(t.c.published_at.is_(None))
    ).one()
    parked = session.execute(sa.select(sa.func.count()).select_from(p)).scalar_one()
    return count, oldest, parked


def ensure_parked_table(connection: sa.Connection) -> None:
    parked_table(sa.MetaData()).create(connection, checkfirst=True)
