"""The tamper-evident audit trail (第二十二条 records; 第二十六条、第二十七条 decisions).

Every state-changing call and every personal-information read appends one entry to an append-only hash
chain in the service's own database: each entry holds the SHA-256 of the previous entry, and its own hash
covers all of its fields and that link. A one-row `audit_head` table holds the last sequence number and
hash; appending locks that row (SELECT … FOR UPDATE on PostgreSQL; SQLite serialises writers with
BEGIN IMMEDIATE), so two replicas appending at once never fork the chain.

Editing, deleting, reordering or inserting a row breaks a hash, a link, the numbering or the head. A
consistent rewrite of a whole database is caught by the heads published on NATS (`bjsv.audit.<service>`,
stream BJSV_AUDIT): the services' NATS users may append to that stream but never delete or purge it, so
the published heads are kept outside the database an attacker rewrote.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc
import sqlalchemy as sa
from sqlalchemy.orm import Session

from common import context
from common.errors import DomainError

log = logging.getLogger(__name__)

GENESIS = "0" * 64
STREAM = "BJSV_AUDIT"
# Read-only RPCs by name (AIP verbs): everything else changes state and is audited. Rules' Check/Evaluate
# decisions are kept by the rules service's own decision log (with the rule-set version), not here.
READ_PREFIXES: tuple[str, ...] = (
    "Get",
    "BatchGet",
    "List",
    "Verify",
    "Check",
    "BatchCheck",
    "Evaluate",
    "BatchEvaluate",
    "Preview",
    "Parse",
)
READ_PREFIXES += ("Validate", "Replay")
FIELDS: tuple[str, ...] = (
    "time",
    "subject",
    "organisation",
    "role",
    "client",
    "method",
    "resource",
    "request_digest",
    "outcome",
)
FIELDS += ("trace_id",)


def tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """Add the audit tables to a service's metadata (common.events.platform_tables does, for every service)."""
    if "audit_entry" in metadata.tables:
        return metadata.tables["audit_entry"], metadata.tables["audit_head"]
    entry_table = sa.Table(
        "audit_entry",
        metadata,
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        *(sa.Column(name, sa.String(512), nullable=False) for name in FIELDS),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Index("ix_audit_entry_time", "time"),
        sa.Index("ix_audit_entry_resource", "resource"),
    )
    head_table = sa.Table(
        "audit_head",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    return entry_table, head_table


metadata = sa.MetaData()
entries, head = tables(metadata)


def create_tables() -> None:
    """Body of each service's `00NN_audit_chain` migration (SQLite and PostgreSQL)."""
    from alembic import op

    bind = op.get_bind()
    metadata.create_all(bind)
    bind.execute(head.insert().values(id=1, seq=0, hash=GENESIS))


@dataclass(frozen=True)
class Entry:
    time: str
    subject: str
    organisation: str
    role: str
    client: str
    method: str
    resource: str
    request_digest: str
    outcome: str
    trace_id: str
    seq: int = 0
    prev_hash: str = ""
    hash: str = field(default="", compare=False)

    def digest(self) -> str:
        """SHA-256 over the canonical JSON of every field but the hash itself."""
        body = {k: v for k, v in asdict(self).items() if k != "hash"}
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def append(session: Session, entry: Entry) -> Entry:
    """Append `entry` to the chain inside the caller's transaction (locks the head row until commit)."""
    seq, prev = session.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1).with_for_update()).one()
    linked = Entry(**{**asdict(entry), "seq": seq + 1, "prev_hash": prev, "hash": ""})
    linked = Entry(**{**asdict(linked), "hash": linked.digest()})
    session.execute(entries.insert().values(**asdict(linked)))
    session.execute(head.update().where(head.c.id == 1).values(seq=linked.seq, hash=linked.hash))
    return linked


def current_head(session: Session) -> tuple[int, str]:
    seq, digest = session.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1)).one()
    return int(seq), digest


@dataclass(frozen=True)
class Break:
    """The first entry where the chain stops being trustworthy, and why (English reason code + Chinese text)."""

    seq: int
    reason: str
    text: str


def verify(session: Session, witnessed: Iterable[tuple[int, str]] = ()) -> tuple[int, Break | None]:
    """Check the whole chain: numbering, links, hashes, the head row, and heads witnessed on NATS.
    Returns (entries checked, first break or None)."""
    expected_seq, prev, count = 1, GENESIS, 0
    hashes: dict[int, str] = {}
    for row in session.execute(sa.select(entries).order_by(entries.c.seq)).mappings():
        entry = Entry(**row)
        count += 1
        if entry.seq != expected_seq:
            missing = f"第 {expected_seq} 条缺失（删除或重排）" if entry.seq > expected_seq else "序号重复"
            return count, Break(expected_seq, "SEQUENCE_GAP", f"{missing}，其后为第 {entry.seq} 条")
        if entry.prev_hash != prev:
            return count, Break(
                entry.seq, "LINK_BROKEN", f"第 {entry.seq} 条记录的前一条哈希与第 {entry.seq - 1} 条不符"
            )
        if entry.digest() != entry.hash:
            return count, Break(entry.seq, "HASH_MISMATCH", f"第 {entry.seq} 条记录的内容与其哈希不符（被修改）")
        hashes[entry.seq] = entry.hash
        prev, expected_seq = entry.hash, expected_seq + 1
    head_seq, head_hash = current_head(session)
    last = expected_seq - 1
    if (head_seq, head_hash) != (last, prev):
        # Head ahead: the tail was deleted (the first missing entry); behind: entries were added after it.
        seq = last + 1 if head_seq > last else head_seq + 1 if head_seq < last else last
        return count, Break(seq, "HEAD_MISMATCH", f"链头记录为第 {head_seq} 条，而链实际止于第 {last} 条（尾部被删改）")
    for seq, digest in sorted(witnessed):
        if hashes.get(seq) != digest:
            return count, Break(
                seq, "WITNESS_MISMATCH", f"第 {seq} 条（或其前的记录）与 NATS 上发布的链头不符（数据库被改写）"
            )
    return count, None


def search(
    session: Session,
    *,
    subject: str = "",
    resource: str = "",
    since: str = "",
    until: str = "",
    limit: int = 100,
) -> list[Entry]:
    """Entries by subject (exact), resource (prefix: `supervisors/42` or `supervisors/`) and time range."""
    q = sa.select(entries).order_by(entries.c.seq.desc()).limit(limit)
    if subject:
        q = q.where(entries.c.subject == subject)
    if resource:
        q = q.where(entries.c.resource.startswith(resource, autoescape=True))
    if since:
        q = q.where(entries.c.time >= since)
    if until:
        q = q.where(entries.c.time < until)
    return [Entry(**row) for row in session.execute(q).mappings()]


# -- recording from the server ---------------------------------------------------------------------------


def changes_state(method: str) -> bool:
    """`/bjsv.registry.v1.RegistryService/IssueBadge` → True; health, reflection and reads → False."""
    if not method.startswith("/bjsv."):
        return False
    return not method.rsplit("/", 1)[-1].startswith(READ_PREFIXES)


def resource_of(request: object, depth: int = 2) -> str:
    """The first resource name (`supervisors/42`) among the request's string fields, looking one level into
    embedded messages (SetContact carries `contact.recipient`)."""
    fields: list[tuple[Any, Any]] = getattr(request, "ListFields", list)()
    for _, value in fields:
        if isinstance(value, str) and "/" in value:
            return value[:512]
    for _, value in fields if depth > 1 else ():
        if hasattr(value, "ListFields") and (found := resource_of(value, depth - 1)):  # a singular message
            return found
    return ""


def request_digest(request: object) -> str:
    serialize = getattr(request, "SerializeToString", None)
    if serialize is None:  # a client stream: its messages were consumed by the handler
        return ""
    return hashlib.sha256(serialize(deterministic=True)).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def make_entry(*, method: str, resource: str, digest: str, outcome: str, client: str) -> Entry:
    """An entry for the current caller and trace (common.context), stamped now (UTC)."""
    caller = context.current_caller()
    return Entry(
        time=_now(),
        subject=getattr(caller, "subject", "") or "",
        organisation=caller.org,
        role=caller.role,
        client=client[:512],
        method=method,
        resource=resource,
        request_digest=digest,
        outcome=outcome,
        trace_id=context.current_trace_id(),
    )


@dataclass
class Call:
    """A state-changing gRPC call in progress. Its entry is appended inside the handler's first write
    transaction, so the change and its record commit together (or neither does); a call that wrote nothing
    (a refusal, an idempotent no-op) gets its entry after the handler, with the outcome."""

    method: str
    request: object
    client: str  # read on the event loop: the gRPC context is not for worker threads
    recorded: bool = False

    def entry(self, outcome: str) -> Entry:
        return make_entry(
            method=self.method,
            resource=resource_of(self.request),
            digest=request_digest(self.request),
            outcome=outcome,
            client=self.client,
        )


_call: ContextVar[Call | None] = ContextVar("audit_call", default=None)


def begin_call(recorder: Recorder | None, method: str, request: object, ctx) -> None:
    """The interceptor, before the handler: remember a state-changing call for its audit entry."""
    _call.set(Call(method, request, client_of(ctx)) if recorder is not None and changes_state(method) else None)


def record_in(session: Session) -> Call | None:
    """Database.write_sync, just before commit: append the current call's entry in the handler's own
    transaction; the caller marks it recorded once the commit succeeded."""
    call = _call.get()
    if call is None or call.recorded:
        return None
    append(session, call.entry("OK"))
    return call


class Recorder:
    """A service's audit chain: the interceptor's begin_call/after_call hooks, personal-data reads
    (`record_personal_read`), and the head published on NATS."""

    def __init__(self, database, service: str) -> None:
        self.database = database
        self.service = service

    async def publish_heads(self, bus, interval: float) -> None:
        """Background task: publish the chain head on `bjsv.audit.<service>` whenever it moved."""
        await ensure_stream(bus)
        published: tuple[int, str] | None = None
        while True:
            try:
                now = await self.database.read(current_head)
                if now != published and now[0] > 0:
                    body = json.dumps({"service": self.service, "seq": now[0], "hash": now[1], "time": _now()})
                    await bus.js.publish(f"bjsv.audit.{self.service}", body.encode(), timeout=5)
                    published = now
            except Exception as e:  # noqa: BLE001 - NATS or DB briefly away; the next round publishes
                log.warning("audit head not published: %s", e)
            await asyncio.sleep(interval)


async def after_call(recorder: Recorder | None, error: BaseException | None, ctx) -> None:
    """The interceptor, after the handler: the entry of a call that wrote nothing, or of a failure after a
    committed change, with the outcome the caller got. A call refused before its caller was authenticated
    writes nothing (anyone could send those without limit): it is counted and logged, rate-limited."""
    call = _call.get()
    _call.set(None)  # the entry below must not be taken for the handler's own transaction
    if recorder is None or call is None or (call.recorded and error is None):
        return
    if error is not None and not context.current_caller().roles:  # the guard bound no verified caller
        from common import metrics  # here, not at the top: metrics imports common.events, which imports this

        metrics.refusals.refused(recorder.service, call.method, time.monotonic())
        return
    try:
        await recorder.database.write(append, call.entry(outcome_of(error, ctx)))
    except Exception:  # never turn the call's own result into an error: the missing entry is logged loudly
        log.exception("audit entry not written: %s", call.method)


def outcome_of(error: BaseException | None, ctx) -> str:
    """OK, or the status name the caller got (a refusal of an authenticated caller is recorded too: who
    tried what)."""
    if error is None:
        return "OK"
    if isinstance(error, DomainError):
        return error.code.name
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    code = getattr(ctx, "code", lambda: None)()  # set by an abort (e.g. authentication, authorization)
    if isinstance(error, grpc.aio.AbortError) and code is not None:
        return code.name if hasattr(code, "name") else str(code)
    return "INTERNAL"


def client_of(ctx) -> str:
    """`<certificate CN>@<peer address>` of a gRPC call (the CN is empty in plaintext mode)."""
    from common import pki  # here, not at the top: common.events imports this module, and pki imports db

    try:
        return f"{pki.peer_component(ctx.auth_context())}@{ctx.peer()}"
    except Exception:  # noqa: BLE001 - a call without transport details (in-process tests)
        return ""


_recorder: Recorder | None = None


def install(recorder: Recorder | None) -> None:
    global _recorder
    _recorder = recorder


async def record_personal_read(method: str, resource: str, ctx=None) -> None:
    """Audit a read of personal information (ID number, phone, photo, e-mail; 个人信息保护法) from a handler."""
    if _recorder is None:
        return
    entry = make_entry(method=method, resource=resource, digest="", outcome="PERSONAL_DATA_READ", client=client_of(ctx))
    await _recorder.database.write(append, entry)


async def ensure_stream(bus) -> None:
    from nats.js import api
    from nats.js.errors import BadRequestError

    config = api.StreamConfig(
        name=STREAM,
        subjects=["bjsv.audit.>"],
        storage=api.StorageType.FILE,
        num_replicas=bus.settings.nats_replicas,
        max_msgs_per_subject=100_000,
    )
    try:
        await bus.js.add_stream(config)
    except BadRequestError:
        await bus.js.update_stream(config)


async def witnessed_heads(nc, service: str) -> list[tuple[int, str]]:
    """Every head `service` published on NATS, oldest first, for `verify`."""
    js = nc.jetstream()
    subject = f"bjsv.audit.{service}"
    info = await js.stream_info(STREAM, subjects_filter=subject)
    if not (info.state.subjects or {}).get(subject):
        return []
    out: list[tuple[int, str]] = []
    sub = await js.subscribe(subject, ordered_consumer=True)
    try:
        while True:
            msg = await sub.next_msg(timeout=5)
            body = json.loads(msg.data)
            out.append((int(body["seq"]), str(body["hash"])))
            if msg.metadata.num_pending == 0:
                return out
    finally:
        await sub.unsubscribe()
