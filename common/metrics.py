"""Prometheus metrics of a service process (prometheus_client) and the one log line per RPC.

Each service serves `/metrics` on `BJSV_<NAME>_METRICS_PORT` (common.server). RPC counts and latencies
are recorded by the server interceptor (`observe_rpc`); outbox backlog, parked rows and consumer lag are
sampled by a supervised background task (`sample`), because they live in the database and in JetStream.
Label values are method names, status codes, durable and task names only: never personal data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass

import grpc
from nats.js.errors import NotFoundError
from opentelemetry.trace import Span, SpanKind
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from common import context, events, tracing
from common.config import Settings
from common.db import StartupError

log = logging.getLogger("bjsv.rpc")

RPCS = Counter("bjsv_rpc", "gRPC calls handled, by method and status code", ["method", "code"])
RPC_SECONDS = Histogram(
    "bjsv_rpc_duration_seconds",
    "gRPC call latency, by method and status code",
    ["method", "code"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTBOX_BACKLOG = Gauge("bjsv_outbox_backlog", "outbox rows not yet published")
OUTBOX_OLDEST = Gauge("bjsv_outbox_oldest_age_seconds", "age of the oldest unpublished outbox row (0: none)")
OUTBOX_PARKED = Gauge("bjsv_outbox_parked", "outbox rows the relay parked (supervisionctl outbox)")
CONSUMER_LAG = Gauge("bjsv_consumer_lag", "events in the stream not yet delivered to the durable", ["durable"])
CONSUMER_ACK_PENDING = Gauge("bjsv_consumer_ack_pending", "events delivered and not yet acknowledged", ["durable"])
DEAD_LETTERS = Counter("bjsv_dead_letters", "events a consumer gave up on (bjsv.dlq.<durable>)", ["durable"])
TASK_RESTARTS = Counter("bjsv_task_restarts", "background tasks restarted after a failure", ["task"])
TASKS_FAILING = Gauge("bjsv_tasks_failing", "background tasks that keep failing (health NOT_SERVING)")
UNAUTHENTICATED_REFUSALS = Counter(
    "bjsv_unauthenticated_refusals",
    "state-changing calls refused before the caller was authenticated (not audited), by service and method",
    ["service", "method"],
)

SAMPLE_EVERY = 2.0  # seconds between samples of the outbox and the consumers
REFUSAL_LOG_EVERY = 10.0  # seconds: at most one log line per method about unauthenticated refusals


def serve_http(settings: Settings, service: str) -> None:
    """Start the service's /metrics endpoint (a daemon thread of prometheus_client), if it has a port."""
    port = settings.metrics_port(service)
    if not port:
        return
    try:
        start_http_server(port, addr=settings.bind_host)
    except OSError as e:
        raise StartupError(
            f"cannot serve metrics on {settings.bind_host}:{port}: {e}. "
            f"Fix: stop what uses the port or set BJSV_{service.upper()}_METRICS_PORT."
        ) from None


@dataclass
class Call:
    """One RPC being served: its timing and its trace span (begun once the trace id is bound)."""

    method: str
    started: float
    span: Span

    @classmethod
    def begin(cls, method: str) -> Call:
        span = tracing.start(method, SpanKind.SERVER, **{"rpc.system": "grpc", "rpc.method": method})
        return cls(method, time.perf_counter(), span)

    def end(self, code: grpc.StatusCode) -> None:
        observe_rpc(self.method, code, time.perf_counter() - self.started)
        self.span.set_attribute("rpc.grpc.status_code", code.value[0])
        tracing.finish(self.span, failed="" if code == grpc.StatusCode.OK else code.name)


def observe_rpc(method: str, code: grpc.StatusCode, seconds: float) -> None:
    """Count the call and write its one log line: method, status, duration, caller (organisation and role —
    never the request's content)."""
    name = code.name
    RPCS.labels(method, name).inc()
    RPC_SECONDS.labels(method, name).observe(seconds)
    caller = context.current_caller()
    log.info(
        "rpc %s %s %.1fms caller=%s/%s",
        method,
        name,
        seconds * 1000,
        caller.org or "-",
        caller.role or "-",
        extra={"rpc_method": method, "rpc_code": name, "duration_ms": round(seconds * 1000, 1)},
    )


class RefusalLog:
    """Unauthenticated refusals of state-changing calls: counted, and logged at most once per
    REFUSAL_LOG_EVERY seconds per method with the count since the last line. An anonymous caller can send
    any number of them; the audit table, the log and the labels (service, and the method from the server's
    own handler table) stay bounded."""

    def __init__(self, every: float = REFUSAL_LOG_EVERY) -> None:
        self.every = every
        self.pending: dict[str, tuple[float, int]] = {}  # method → (time of its last line, refusals since)

    def refused(self, service: str, method: str, now: float) -> None:
        UNAUTHENTICATED_REFUSALS.labels(service, method).inc()
        last, count = self.pending.get(method, (now - self.every, 0))
        if now - last < self.every:
            self.pending[method] = (last, count + 1)
            return
        self.pending[method] = (now, 0)
        log.warning(
            "unauthenticated calls refused: %s x%d (not audited)",
            method,
            count + 1,
            extra={"rpc_method": method, "refused": count + 1},
        )


refusals = RefusalLog()


async def sample(database, bus, durables: list[tuple[str, str]]) -> None:
    """Supervised task: every SAMPLE_EVERY s, the outbox backlog (database) and each durable's lag (JetStream
    consumer info); `durables` are (stream, durable) pairs."""
    while True:
        if database is not None:
            count, oldest, parked = await database.read(events.backlog)
            OUTBOX_BACKLOG.set(count)
            OUTBOX_PARKED.set(parked)
            OUTBOX_OLDEST.set(age_seconds(oldest))
        for stream, durable in durables:
            try:
                info = await bus.js.consumer_info(stream, durable)
            except NotFoundError:  # its consumer task has not declared it yet
                continue
            CONSUMER_LAG.labels(durable).set(info.num_pending or 0)
            CONSUMER_ACK_PENDING.labels(durable).set(info.num_ack_pending or 0)
        await asyncio.sleep(SAMPLE_EVERY)


def age_seconds(written: dt.datetime | None) -> float:
    if written is None:
        return 0.0
    if written.tzinfo is None:  # SQLite returns naive UTC
        written = written.replace(tzinfo=dt.UTC)
    return max(0.0, (dt.datetime.now(dt.UTC) - written).total_seconds())
