"""The NATS JetStream backbone: connection, stream provisioning, the outbox relay, durable consumers.

Streams: one per source service, `BJSV_<SOURCE>` on `bjsv.<source>.>`, plus `BJSV_DLQ` on `bjsv.dlq.>`
for events a consumer gave up on. Everything is provisioned idempotently by whichever service starts
first; with several replicas each durable consumer is shared, so each event goes to one replica.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats
from nats.errors import MaxPayloadError, NoServersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, BadRequestError
from opentelemetry.trace import SpanKind

from bjsv.events.v1 import envelope_pb2
from common import context, events, metrics, pki, tracing
from common.config import Settings
from common.db import Database, StartupError

log = logging.getLogger(__name__)

MSG_ID = "Nats-Msg-Id"
TRACE_HEADER = "Bjsv-Trace-Id"
DUPLICATE_WINDOW = 120.0  # seconds; covers the relay's retry horizon (library notes §2.2)
ATOMIC_BATCH_MAX = 1000  # nats-server's jetstream.limits.batch.max_msgs default
ATOMIC_DUPLICATE = 10201  # err_code: "atomic publish batch contains duplicate message id"
HANDED_MAX = 20_000  # outbox rows the relay holds in memory while it cannot publish (the rest wait in the table)
PARK_AFTER = 5  # attempts JetStream may reject one row before the relay parks it (issue 13: never block on one row)
HEADROOM = 1024  # bytes of max_payload left for the headers and protocol line


def stream_name(source: str) -> str:
    return f"BJSV_{source.upper()}"


class Bus:
    """A service's NATS connection and JetStream context; connect() is called by the server bootstrap."""

    def __init__(self, settings: Settings, *, service: str) -> None:
        self.settings = settings
        self.service = service
        self.nc: nats.NATS | None = None
        self.js: JetStreamContext | None = None
        self.closing = False
        # Streams that accept atomic batch publishes (nats-server ≥ 2.12 keeps `allow_atomic`; older ones drop it).
        self.atomic_streams: set[str] = set()

    async def connect(self) -> None:
        async def on_error(e: Exception) -> None:
            log.warning("nats error: %s", e)

        async def on_disconnected() -> None:
            if not self.closing:
                log.warning("nats disconnected; reconnecting")

        async def on_reconnected() -> None:
            url = self.nc.connected_url if self.nc else None
            log.info("nats reconnected to %s", url.netloc if url else "?")

        try:
            # Reconnects are unlimited once connected; the first connect is bounded so a wrong URL fails fast.
            self.nc = await asyncio.wait_for(
                self._connect(on_error, on_disconnected, on_reconnected), timeout=self.settings.nats_connect_timeout
            )
        except (NoServersError, OSError, TimeoutError) as e:
            raise StartupError(
                f"cannot reach NATS at {self.settings.nats_url}: {e or type(e).__name__}. "
                "Fix: start it (`supervisionctl up` starts an embedded one) or set BJSV_NATS_URL."
            ) from None
        self.js = self.nc.jetstream()

    async def _connect(self, on_error, on_disconnected, on_reconnected) -> nats.NATS:
        return await nats.connect(
            servers=self.settings.nats_servers(),
            name=f"bjsv-{self.service}",
            connect_timeout=3,
            tls=pki.ssl_context(self.settings, self.service),  # its certificate = its NATS user (natsd.py)
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
        )

    @property
    def client(self) -> nats.NATS:
        """The NATS connection; only after connect()."""
        if self.nc is None:
            raise RuntimeError("bus used before connect()")
        return self.nc

    @property
    def jetstream(self) -> JetStreamContext:
        """The JetStream context; only after connect()."""
        if self.js is None:
            raise RuntimeError("bus used before connect()")
        return self.js

    async def ensure_stream(self, source: str) -> None:
        await self._ensure(stream_name(source), [f"bjsv.{source}.>"])

    async def ensure_dlq(self) -> None:
        await self._ensure("BJSV_DLQ", ["bjsv.dlq.>"])

    async def _ensure(self, name: str, subjects: list[str]) -> None:
        config = api.StreamConfig(
            name=name,
            subjects=subjects,
            storage=api.StorageType.FILE,
            num_replicas=self.settings.nats_replicas,
            duplicate_window=DUPLICATE_WINDOW,
            allow_atomic=True,
        )
        try:
            info = await self.jetstream.add_stream(config)
        except BadRequestError:
            # Exists with another config (e.g. provisioned by an older version): converge it.
            info = await self.jetstream.update_stream(config)
        if info.config.allow_atomic:
            self.atomic_streams.add(name)

    async def publish_core(self, subject: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        """Plain NATS publish (no persistence) — for per-recipient fan-out to calling systems."""
        await self.client.publish(subject, data, headers=headers)

    async def close(self) -> None:
        self.closing = True
        if self.nc and not self.nc.is_closed:
            try:
                async with asyncio.timeout(3):
                    await self.nc.drain()
            except Exception:  # noqa: BLE001 - closing anyway; drain may time out while NATS is down
                await self.nc.close()


Row = tuple[str, str, bytes, str | None]  # event id, NATS subject, envelope, trace id (events.unpublished)


class OutboxRelay:
    """Publishes committed outbox rows to JetStream, then marks them published.

    Fast path: every write transaction hands the outbox rows it committed to the relay in memory
    (Database.on_commit); they are published at once, in commit order, without reading them back, and
    marked published in batches (every `mark_every` seconds or `batch` rows).
    Safety net: every `poll_interval` a scan publishes rows still unpublished `grace` seconds after they
    were written: a process that died between commit and publish (or before marking), another process's
    leftovers. On PostgreSQL the scan claims rows with FOR UPDATE SKIP LOCKED so replicas do not scan the
    same rows at once. A row published twice (a scan overtaking a late mark, a crash before the mark) is
    dropped by JetStream's Nats-Msg-Id deduplication: DUPLICATE_WINDOW is far longer than `grace`.
    """

    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        batch: int = 500,
        poll_interval: float = 0.5,
        grace: float = 5.0,
        mark_every: float = 0.25,
    ) -> None:
        self.db = db
        self.bus = bus
        self.batch = batch
        self.poll_interval = poll_interval
        self.grace = grace
        self.mark_every = mark_every
        self._handed: collections.deque[Row] = collections.deque()
        self._published: list[str] = []  # event ids published and not marked yet
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published = 0
        self.parked = 0
        self.ack_timeout = 5.0
        self._rejections: collections.Counter[str] = collections.Counter()  # event id → JetStream rejections

    def handover(self, rows: list[dict]) -> None:
        """Database.on_commit hook; runs in the committing thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._receive, rows)

    def _receive(self, rows: list[dict]) -> None:
        if len(self._handed) >= HANDED_MAX:
            # NATS has been unreachable for a while: stop holding copies in memory; the rows are in the outbox
            # and the scan publishes them once they are `grace` seconds old.
            return
        self._handed.extend((r["event_id"], r["nats_subject"], r["envelope"], r["trace_id"]) for r in rows)
        self._wake.set()

    async def run(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self.db.on_commit(self.handover)
        backoff = 0.2
        next_scan = next_mark = loop.time()  # scan at start: rows left by an earlier run
        while True:
            due = min(next_scan, next_mark if self._published else next_scan)
            if not self._handed and due > loop.time():
                try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the shutdown's cancellation
                    async with asyncio.timeout(due - loop.time()):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()
            try:
                await self._publish_handed()
                if self._published and (loop.time() >= next_mark or len(self._published) >= self.batch):
                    await self._mark()
                    next_mark = loop.time() + self.mark_every
                if loop.time() >= next_scan:
                    while await self.scan(self.grace) == self.batch:
                        pass
                    next_scan = loop.time() + self.poll_interval
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - NATS/DB trouble: rows stay handed / in the outbox; retry
                log.warning("outbox relay: publish failed, will retry: %s", e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _publish_handed(self) -> None:
        while self._handed:
            rows = [self._handed[i] for i in range(min(len(self._handed), ATOMIC_BATCH_MAX))]
            parked = await self._publish(rows)  # on failure the rows stay at the head, in order
            if parked:
                await asyncio.to_thread(self.db.write_sync, events.park, parked)
            for _ in rows:
                self._handed.popleft()
            gone = {row[0] for row, _ in parked}
            self._published += [r[0] for r in rows if r[0] not in gone]
            self.published += len(rows) - len(gone)

    async def _mark(self) -> None:
        ids, self._published = self._published, []
        try:
            await asyncio.to_thread(self.db.write_sync, events.mark_published, ids)
        except BaseException:
            self._published[:0] = ids
            raise

    async def scan(self, grace: float) -> int:
        """Publish and mark rows unpublished `grace` seconds after they were written; returns how many."""
        before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=grace)
        if self.db.is_postgres:
            loop = asyncio.get_running_loop()

            def claim_publish_mark(session) -> int:
                rows = events.unpublished(session, limit=self.batch, lock=True, written_before=before)
                if rows:
                    parked = asyncio.run_coroutine_threadsafe(self._publish(rows), loop).result(timeout=30)
                    events.park(session, parked)  # in the claiming transaction, which holds the rows' locks
                    events.mark_published(session, [r[0] for r in rows])
                    self.published += len(rows) - len(parked)
                return len(rows)

            return await asyncio.to_thread(self.db.write_sync, claim_publish_mark)
        rows = await self.db.read(events.unpublished, limit=self.batch, lock=False, written_before=before)
        if rows:
            parked = await self._publish(rows)

            def park_mark(session) -> None:
                events.park(session, parked)
                events.mark_published(session, [r[0] for r in rows])

            await asyncio.to_thread(self.db.write_sync, park_mark)
            self.published += len(rows) - len(parked)
        return len(rows)

    async def drain(self) -> None:
        """At shutdown: publish what was handed over, mark it, then everything still unpublished."""
        await self._publish_handed()
        if self._published:
            await self._mark()
        while await self.scan(0.0) == self.batch:
            pass

    async def _publish(self, rows: list[Row]) -> list[tuple[Row, str]]:
        """Publish rows in order; returns the rows to park (with the reason) instead: larger than the server
        accepts, or rejected by JetStream PARK_AFTER times. The caller parks them in the transaction that
        marks the others. Runs of one stream go as atomic batches where the stream allows them: one ack per
        batch instead of one per event (4× less client CPU per event, bench_pipeline)."""
        limit = self.bus.client.max_payload - HEADROOM
        parked = [(r, f"事件过大：{len(r[2])} 字节，超过消息上限 {limit} 字节") for r in rows if len(r[2]) > limit]
        if parked:
            too_big = {row[0] for row, _ in parked}
            rows = [r for r in rows if r[0] not in too_big]
        start = 0
        while start < len(rows):
            stream = _stream_of(rows[start][1])
            end = start + 1
            while end < len(rows) and end - start < ATOMIC_BATCH_MAX and _stream_of(rows[end][1]) == stream:
                end += 1
            run = rows[start:end]
            # A row JetStream refused before goes alone, so that its refusal is seen (and counted) at once.
            singly = any(r[0] in self._rejections for r in run)
            if stream in self.bus.atomic_streams and len(run) > 1 and not singly:
                try:
                    await self._publish_atomic(run)
                except (APIError, TimeoutError) as e:
                    if (
                        isinstance(e, APIError)
                        and e.err_code != ATOMIC_DUPLICATE
                        and not isinstance(e, BadRequestError)
                    ):
                        raise
                    # Part of the run was stored by an earlier attempt whose ack was lost, or a row was refused
                    # (the server then abandons the batch). One by one, JetStream drops those duplicates
                    # (Nats-Msg-Id), stores the rest and names the refused row; if NATS is away, this fails too.
                    log.warning("outbox relay: atomic batch of %d failed (%r); publishing one by one", len(run), e)
                    parked += await self._publish_each(run, singly=True)
            else:
                parked += await self._publish_each(run, singly=singly)
            start = end
        for row, reason in parked:
            self.parked += 1
            # The operator alert: an ERROR line (and the parked-rows metric, `supervisionctl status`/`outbox`).
            log.error("outbox relay: parked event %s (%s): %s", row[0], row[1], reason)
            self._rejections.pop(row[0], None)
        return parked

    async def _publish_atomic(self, rows: list[Row]) -> None:
        nc, batch_id, last = self.bus.client, uuid.uuid4().hex, len(rows)
        for n, (event_id, subject, envelope, trace_id) in enumerate(rows, 1):
            headers = {
                MSG_ID: event_id,
                TRACE_HEADER: trace_id or "",
                api.Header.BATCH_ID: batch_id,
                api.Header.BATCH_SEQUENCE: str(n),
            }
            if n < last:
                await nc.publish(subject, envelope, headers=headers)
                continue
            headers[api.Header.BATCH_COMMIT] = "1"
            try:
                reply = await nc.request(subject, envelope, headers=headers, timeout=self.ack_timeout)
            except NatsTimeoutError:
                raise TimeoutError("no ack for an atomic batch") from None  # retried by run()
            ack = json.loads(reply.data)
            if "error" in ack:
                raise APIError.from_error(ack["error"])

    async def _publish_each(self, rows: list[Row], *, singly: bool = False) -> list[tuple[Row, str]]:
        results = None if singly else await self._publish_async(rows)
        if results is None:
            # nats-py 2.16 loses JetStream's error reply to publish_async (APIError.from_error raises inside its
            # reply callback), so a refused row looks like a lost ack: one request per row tells them apart.
            # A row that gets no answer either (NATS away) ends the attempt at once.
            results = [await self._publish_one(row) for row in rows]
        parked, failure = [], None
        for row, result in zip(rows, results, strict=True):
            if not isinstance(result, BaseException):
                self._rejections.pop(row[0], None)
                continue
            if isinstance(result, BadRequestError | MaxPayloadError):  # this row was refused; the server is there
                self._rejections[row[0]] += 1
                if self._rejections[row[0]] >= PARK_AFTER:
                    parked.append((row, f"JetStream 拒收 {PARK_AFTER} 次：{type(result).__name__}: {result}"))
                    continue
            failure = failure or result
        if failure is not None:
            raise failure  # retried as a whole by run(); what was stored is deduplicated by Nats-Msg-Id
        return parked

    async def _publish_async(self, rows: list[Row]) -> list | None:
        """Publish without waiting between rows; the results (ack or error) per row, None if acks are missing."""
        futures = []
        for event_id, subject, envelope, trace_id in rows:
            headers = {MSG_ID: event_id, TRACE_HEADER: trace_id or ""}
            futures.append(await self.bus.jetstream.publish_async(subject, envelope, headers=headers))
        # An ack lost while NATS restarts never resolves: give up on the batch (cancelling the futures frees
        # their publish slots); the caller retries — Nats-Msg-Id makes the retry idempotent.
        try:
            async with asyncio.timeout(self.ack_timeout):
                return await asyncio.gather(*futures, return_exceptions=True)
        except TimeoutError:
            return None

    async def _publish_one(self, row: Row) -> BaseException | None:
        """Publish one row and wait for its ack; returns the refusal, raises anything else."""
        event_id, subject, envelope, trace_id = row
        try:
            await self.bus.jetstream.publish(
                subject, envelope, headers={MSG_ID: event_id, TRACE_HEADER: trace_id or ""}, timeout=self.ack_timeout
            )
        except (BadRequestError, MaxPayloadError) as e:
            return e
        return None


def _stream_of(subject: str) -> str:
    """`bjsv.<source>.<type>` → `BJSV_<SOURCE>`."""
    return stream_name(subject.split(".", 2)[1])


Handler = Callable[[envelope_pb2.EventEnvelope], Awaitable[None]]
BatchHandler = Callable[[list[envelope_pb2.EventEnvelope]], Awaitable[None]]


@dataclass
class Subscription:
    """A durable pull consumer on one source service's stream.

    `types` are event types ("badge.issued"); the handler must be idempotent (events.mark_processed).
    With `batch_handler`, each fetched batch is first offered whole (e.g. applied in one transaction, so
    one commit serves many events); if that raises, every event of the batch takes the per-event path
    (`handler`, retries with backoff, then the dead-letter subject).

    `ack_wait` is how long the events a replica fetched stay with it when it dies (SIGKILL, a lost node)
    before the server hands them to another replica; while a fetched batch is being worked on, the
    consumer tells the server so every third of `ack_wait`, so a slow batch is never handed out twice and
    `ack_wait` can stay short. `batch` bounds what one replica holds: a few for slow per-event handlers.
    """

    durable: str
    source: str
    types: list[str]
    handler: Handler
    batch_handler: BatchHandler | None = None
    max_deliver: int = 8
    ack_wait: float = 30.0
    batch: int = 64
    _stopping: bool = field(default=False, init=False, repr=False)

    async def run(self, bus: Bus) -> None:
        config = api.ConsumerConfig(
            durable_name=self.durable,
            filter_subjects=[events.subject_for(self.source, t) for t in self.types],
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver,
        )
        stream = stream_name(self.source)
        try:
            await bus.jetstream.add_consumer(stream, config)
        except BadRequestError:
            await bus.jetstream.add_consumer(stream, config)  # config changed: the server updates in place
        sub = await bus.jetstream.pull_subscribe_bind(durable=self.durable, stream=stream)
        try:
            while not self._stopping:
                try:
                    msgs = await sub.fetch(self.batch, timeout=1.0)
                except (NatsTimeoutError, TimeoutError):
                    continue
                # Any other fetch failure ends this run: the supervisor (common.supervise) logs it with its
                # traceback and starts the consumer again with backoff; unacknowledged events are redelivered.
                if not msgs:  # an empty fetch is normal (it once killed this loop: envs[0] on [])
                    continue
                async with self._working_on(msgs):
                    if await self._handle_batch(msgs):
                        continue
                    for msg in msgs:
                        await self._handle(bus, msg)
        finally:
            # The durable stays on the server (it is shared by replicas); only this subscription goes.
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    @contextlib.asynccontextmanager
    async def _working_on(self, msgs):
        """Every third of ack_wait, "still in progress" for each fetched event not yet acknowledged."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.ack_wait / 3)
                try:
                    for msg in msgs:
                        if not msg.is_acked:
                            await msg.in_progress()
                except Exception as e:  # noqa: BLE001 - the connection is down: the events come back after ack_wait
                    log.warning("consumer %s: in-progress signal failed (%s); held events may be redelivered",
                                self.durable, e)  # fmt: skip

        heartbeat = asyncio.create_task(beat(), name=f"in-progress-{self.durable}")
        try:
            yield
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _handle_batch(self, msgs) -> bool:
        """Offer the whole batch to batch_handler (if any); True when it was applied and acknowledged."""
        if self.batch_handler is None:
            return False
        try:
            envs = [envelope_pb2.EventEnvelope.FromString(m.data) for m in msgs]
        except Exception:  # noqa: BLE001 - an undecodable message: the per-event path parks it
            return False
        context.bind(envs[0].trace_id or context.new_trace_id(), context.Caller(org=envs[0].actor))
        types = sorted({e.type for e in envs})
        span = self._span(f"consume {types[0] if len(types) == 1 else 'batch'}", envs[0].event_id)
        span.set_attribute("messaging.batch.message_count", len(envs))
        try:
            await self.batch_handler(envs)
        except asyncio.CancelledError:
            tracing.finish(span, failed="cancelled")
            raise
        except Exception as e:  # noqa: BLE001 - fall back to one event at a time
            tracing.finish(span, failed=type(e).__name__)
            log.warning("consumer %s: batch of %d failed (%s); retrying one by one", self.durable, len(msgs), e)
            return False
        tracing.finish(span)
        for msg in msgs:
            await msg.ack()
        return True

    async def _handle(self, bus: Bus, msg) -> None:
        env = envelope_pb2.EventEnvelope()
        try:
            env.ParseFromString(msg.data)
        except Exception:  # noqa: BLE001 - not ours: park it, never crash the loop
            await self._dead_letter(bus, msg, "undecodable envelope")
            return
        context.bind(env.trace_id or context.new_trace_id(), context.Caller(org=env.actor))
        span = self._span(f"consume {env.type}", env.event_id)
        try:
            await self.handler(env)
        except asyncio.CancelledError:
            tracing.finish(span, failed="cancelled")
            raise
        except Exception as e:  # noqa: BLE001 - any handler failure is logged (traceback), retried, dead-lettered
            tracing.finish(span, failed=type(e).__name__)
            await self._retry_or_give_up(bus, msg, env, e)
            return
        tracing.finish(span)
        await msg.ack()

    def _span(self, name: str, event_id: str):
        attributes = {"messaging.system": "nats", "messaging.consumer.group.name": self.durable}
        return tracing.start(name, SpanKind.CONSUMER, **attributes, **{"messaging.message.id": event_id})

    async def _retry_or_give_up(self, bus: Bus, msg, env: envelope_pb2.EventEnvelope, e: Exception) -> None:
        delivered = msg.metadata.num_delivered
        if delivered >= self.max_deliver:
            log.error(
                "consumer %s: giving up on %s %s after %d attempts: %s",
                self.durable,
                env.type,
                env.event_id,
                delivered,
                e,
            )
            await self._dead_letter(bus, msg, f"{type(e).__name__}: {e}")
            return
        log.warning(
            "consumer %s: %s %s failed (attempt %d), will retry: %s",
            self.durable,
            env.type,
            env.event_id,
            delivered,
            e,
            exc_info=e,
        )
        await msg.nak(delay=min(2.0**delivered, 30.0))

    async def _dead_letter(self, bus: Bus, msg, reason: str) -> None:
        headers = {"Bjsv-Dead-Letter-Reason": reason[:500], "Bjsv-Original-Subject": msg.subject}
        await bus.jetstream.publish(f"bjsv.dlq.{self.durable}", msg.data, headers=headers)
        await msg.ack()
        metrics.DEAD_LETTERS.labels(self.durable).inc()

    def stop(self) -> None:
        self._stopping = True
