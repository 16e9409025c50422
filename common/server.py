"""Service bootstrap shared by all four services: one gRPC aio server with health, reflection, the
context/error interceptor, the outbox relay, event consumers and background tasks, and a graceful stop.

A service's `__main__` is its composition root: it reads settings, builds its adapters (Database, Bus,
clients) and servicers, and hands a `Service` to `run()`.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import psycopg
import psycopg_pool
from grpc_health.v1 import _async as health_aio  # what `health.aio` re-exports, which mypy cannot see
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from sqlalchemy import exc as sa_exc

from common import audit, clients, context, logs, metrics, pki, probes, tracing, validation
from common.auth import credentials
from common.auth.config import AuthSettings
from common.auth.guard import Guard
from common.bus import Bus, OutboxRelay, Subscription, stream_name
from common.config import Settings
from common.context import Caller
from common.db import Database, StartupError
from common.errors import DomainError, Unavailable, internal_status, to_status
from common.supervise import Supervisor

log = logging.getLogger(__name__)


class Admission(Protocol):
    """What the interceptor awaits before every handler: the caller of `method`, or None (exempt calls).
    Production always uses `Guard`; only bench/baseline_server.py passes another one (the benchmark baseline)."""

    async def admit(self, method: str, metadata: dict[str, str], peer: str) -> Caller | None: ...


@dataclass
class Servicer:
    add_to_server: Callable[[Any, grpc.aio.Server], None]  # the generated add_<X>Servicer_to_server
    implementation: Any
    full_name: str  # e.g. "bjsv.registry.v1.RegistryService"


@dataclass
class Service:
    name: str
    settings: Settings
    servicers: list[Servicer]
    database: Database | None = None
    bus: Bus | None = None
    subscriptions: list[Subscription] = field(default_factory=list)
    # Long-running coroutines (sweeps, schedulers); cancelled on shutdown.
    tasks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Awaited after migrations/NATS and before serving, and on shutdown after the server stopped.
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Sources whose streams this service publishes to besides its own (rare) — consumers' are added.
    streams: list[str] = field(default_factory=list)


class ShuttingDown(Unavailable):
    def __init__(self) -> None:
        super().__init__("SERVER_SHUTTING_DOWN", "服务正在停止，请稍后重试")


def _database_outage(exc: Exception) -> bool:
    """A lost or unobtainable database connection: through SQLAlchemy, or psycopg directly (the registry's
    VerifyBadge pool), including a pool that could not connect in time."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError))
    return isinstance(exc, (sa_exc.TimeoutError, psycopg.OperationalError, psycopg_pool.PoolTimeout))


class ContextInterceptor(grpc.aio.ServerInterceptor):
    """Binds the trace id and the caller verified by the guard (token + policy, common.auth), and maps
    errors to rich statuses; after the handler, state-changing calls are appended to the service's audit
    chain with their outcome (common.audit).
    """

    def __init__(self, service: str, guard: Admission) -> None:
        self.service = service
        self.guard = guard
        # Set on SIGTERM: calls arriving from then on are refused with UNAVAILABLE (retry elsewhere) before
        # any work starts, while calls already running finish within the grace period.
        self.draining = False
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.audit: audit.Recorder | None = None  # set by serve() when the service has a database

    async def _bind(self, md: dict, ctx) -> str:
        trace = md.get(context.TRACE_ID_KEY) or context.new_trace_id()
        context.bind(trace)
        if self.draining:
            await ctx.abort_with_status(rpc_status.to_status(to_status(ShuttingDown(), service=self.service)))
        return trace

    def _enter(self, method: str) -> metrics.Call:
        self.in_flight += 1
        self.idle.clear()
        return metrics.Call.begin(method)

    def _leave(self, ctx, call: metrics.Call) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.idle.set()
        call.end(ctx.code() or grpc.StatusCode.OK)

    async def _fail(self, ctx, method: str, exc: Exception, trace: str) -> None:
        if _database_outage(exc):
            # The database went away under the call (a restart or failover cuts every connection): the
            # transaction was rolled back and the next one reconnects, so it is an outage, not a fault.
            log.warning("%s: database unavailable: %s", method, getattr(exc, "orig", exc))
            exc = Unavailable("DATABASE_UNAVAILABLE", "数据库暂不可用，请稍后重试")
        if isinstance(exc, DomainError):
            log.info("%s rejected: %s %s", method, exc.reason, exc.message)
            await ctx.abort_with_status(rpc_status.to_status(to_status(exc, service=self.service)))
        log.exception("%s failed unexpectedly", method)
        await ctx.abort_with_status(rpc_status.to_status(internal_status(trace, service=self.service)))

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        md = dict(handler_call_details.invocation_metadata or ())
        method = handler_call_details.method
        interceptor = self

        def unary_response(inner):  # unary-unary and stream-unary
            async def behavior(request, ctx):
                trace = await interceptor._bind(md, ctx)
                call = interceptor._enter(method)
                audit.begin_call(interceptor.audit, method, request, ctx)
                error: BaseException | None = None
                try:
                    context.bind(trace, await interceptor.guard.admit(method, md, ctx.peer()))
                    validation.check(request)  # input bounds declared in proto/ (bjsv.options.v1.bounds)
                    return await inner(request, ctx)
                except (asyncio.CancelledError, grpc.aio.AbortError) as e:
                    error = e
                    raise
                except Exception as e:  # noqa: BLE001 - mapped to a status, never a traceback to the caller
                    error = e
                    await interceptor._fail(ctx, method, e, trace)
                finally:
                    await audit.after_call(interceptor.audit, error, ctx)
                    interceptor._leave(ctx, call)

            return behavior

        def streamed_response(inner):  # unary-stream and stream-stream
            async def behavior(request, ctx):
                trace = await interceptor._bind(md, ctx)
                call = interceptor._enter(method)
                audit.begin_call(interceptor.audit, method, request, ctx)
                error: BaseException | None = None
                try:
                    context.bind(trace, await interceptor.guard.admit(method, md, ctx.peer()))
                    validation.check(request)
                    result = inner(request, ctx)
                    if inspect.isawaitable(result):  # a handler writing with ctx.write(): grpc_health's Watch,
                        await result  # which round-robin clients with health checking call (cluster profile)
                    else:
                        async for item in result:
                            yield item
                except (asyncio.CancelledError, grpc.aio.AbortError) as e:
                    error = e
                    raise
                except Exception as e:  # noqa: BLE001 - mapped to a status
                    error = e
                    await interceptor._fail(ctx, method, e, trace)
                finally:
                    await audit.after_call(interceptor.audit, error, ctx)
                    interceptor._leave(ctx, call)

            return behavior

        return _wrapped(handler, unary_response, streamed_response)


def _wrapped(handler, unary_response, streamed_response):
    """The handler of the RPC's kind with its behaviour wrapped; unary requests parsed tolerantly."""
    kinds = (
        ("unary_unary", grpc.unary_unary_rpc_method_handler, unary_response),
        ("stream_unary", grpc.stream_unary_rpc_method_handler, unary_response),
        ("unary_stream", grpc.unary_stream_rpc_method_handler, streamed_response),
        ("stream_stream", grpc.stream_stream_rpc_method_handler, streamed_response),
    )
    for attr, make_handler, wrap in kinds:
        inner = getattr(handler, attr)
        if inner is not None:
            parse = handler.request_deserializer
            if attr.startswith("unary") and parse is not None:
                parse = validation.tolerant(parse)
            return make_handler(wrap(inner), parse, handler.response_serializer)
    return handler


async def _drain(interceptor: ContextInterceptor, health_servicer: health_aio.HealthServicer, grace: float) -> None:
    """In-flight calls finish within the grace period; new ones meanwhile get UNAVAILABLE (retryable)."""
    interceptor.draining = True
    await health_servicer.enter_graceful_shutdown()
    try:
        async with asyncio.timeout(grace):
            await interceptor.idle.wait()
    except TimeoutError:
        log.warning("%d calls still running after the grace period; cancelling them", interceptor.in_flight)


async def serve(svc: Service, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None,
                guard: Admission | None = None) -> None:  # fmt: skip
    """Start everything, serve until SIGTERM/SIGINT (or `stop` is set), then stop gracefully."""
    settings = svc.settings
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    serving = asyncio.Event()

    def on_signal() -> None:
        # Before serving, start-up (e.g. waiting for NATS or a migration lock) is abandoned at once.
        if serving.is_set():
            stop.set()
        elif main_task is not None:  # always: serve() runs in a task
            main_task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)

    auth = AuthSettings()
    credentials.use(credentials.ServiceIdentity(auth, svc.name))  # what this service's own calls present
    interceptor = ContextInterceptor(svc.name, guard or Guard(auth))
    server = grpc.aio.server(interceptors=[interceptor])
    address = _listen(server, svc)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for s in svc.servicers:
        s.add_to_server(s.implementation, server)
    names = [s.full_name for s in svc.servicers]
    reflection.enable_server_reflection((*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)

    metrics.serve_http(settings, svc.name)
    tracing.configure(svc.name)
    # Every background task runs under the supervisor: logged, restarted with backoff, reflected in the
    # overall health (""); the APIs' own statuses say only whether calls are answered (clients.API_HEALTH).
    supervisor = Supervisor(on_health=functools.partial(set_health, health_servicer, ("",)))
    if svc.database is not None:
        await asyncio.to_thread(svc.database.migrate if settings.migrate_on_start else svc.database.require_migrated)
        interceptor.audit = audit.Recorder(svc.database, svc.name)
        audit.install(interceptor.audit)
    relay = await _start_background(svc, supervisor, interceptor.audit)
    for hook in svc.on_start:
        await hook()
    for task in svc.tasks:
        supervisor.start(getattr(task, "__name__", "task"), task)

    await server.start()
    probe_server = await probes.start(settings, health_servicer)
    await set_health(health_servicer, (clients.API_HEALTH, *names), True)
    await set_health(health_servicer, ("",), not supervisor.failing)
    serving.set()
    # What start-up allocated (modules, descriptors, rule sets, pools) lives as long as the process: keep it
    # out of the cyclic GC, whose full collections otherwise paused the event loop for 20–40 ms (p99).
    gc.freeze()
    log.info("%s serving on %s", svc.name, address)
    if ready is not None:
        ready.set()

    await stop.wait()
    log.info("%s stopping: draining in-flight calls (grace %.1fs)", svc.name, settings.shutdown_grace)
    await _drain(interceptor, health_servicer, settings.shutdown_grace)
    await server.stop(0.5)
    if probe_server is not None:
        await probe_server.stop(0)
    for sub in svc.subscriptions:
        sub.stop()
    await supervisor.stop([name for name in supervisor.tasks if name != "outbox-relay"])
    for hook in svc.on_stop:
        await hook()
    if relay is not None:
        try:  # publish what the last calls committed; what cannot be sent now stays in the outbox
            async with asyncio.timeout(3):
                await relay.drain()
        except Exception as e:  # noqa: BLE001 - rows stay in the outbox
            log.warning("outbox not fully flushed at shutdown (kept for the next start): %s", e)
    await supervisor.stop()
    if svc.bus is not None:
        await svc.bus.close()
    if svc.database is not None:
        svc.database.dispose()
    tracing.shutdown()
    log.info("%s stopped", svc.name)


def _listen(server: grpc.aio.Server, svc: Service) -> str:
    """Bind the service's port (mutual TLS unless BJSV_TLS=off, warned); the address, or a one-line fix."""
    settings = svc.settings
    address = f"{settings.bind_host}:{settings.port(svc.name)}"
    pki.set_identity(svc.name)
    tls = pki.server_credentials(settings, svc.name)
    try:
        bound = server.add_secure_port(address, tls) if tls else server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise StartupError(
            f"cannot listen on {address} (port in use or address not local). "
            f"Fix: stop what uses it (`ss -ltnp | grep {settings.port(svc.name)}`) or set "
            f"BJSV_{svc.name.upper()}_PORT."
        )
    return address


async def _start_background(
    svc: Service, supervisor: Supervisor, recorder: audit.Recorder | None
) -> OutboxRelay | None:
    """WAL checkpoints, streams, the outbox relay, consumers, audit heads and metrics, under the supervisor."""
    settings = svc.settings
    relay: OutboxRelay | None = None
    if svc.database is not None and not svc.database.is_postgres:
        supervisor.start("wal-checkpoints", svc.database.checkpoints)
    if svc.bus is not None:
        await svc.bus.connect()
        for source in {svc.name, *svc.streams, *(s.source for s in svc.subscriptions)}:
            await svc.bus.ensure_stream(source)
        await svc.bus.ensure_dlq()
        if svc.database is not None:
            relay = OutboxRelay(svc.database, svc.bus, poll_interval=settings.outbox_poll_interval)
            supervisor.start("outbox-relay", relay.run)
        for sub in svc.subscriptions:
            supervisor.start(f"consumer-{sub.durable}", functools.partial(sub.run, svc.bus))
        if recorder is not None:
            supervisor.start(
                "audit-heads", functools.partial(recorder.publish_heads, svc.bus, settings.audit_head_interval)
            )
    if svc.bus is not None or svc.database is not None:
        durables = [(stream_name(sub.source), sub.durable) for sub in svc.subscriptions]
        supervisor.start("metrics-sample", functools.partial(metrics.sample, svc.database, svc.bus, durables))
    return relay


async def set_health(servicer: health_aio.HealthServicer, names: tuple[str, ...], healthy: bool) -> None:
    """Overall and per-service health (ignored by the servicer once it entered its graceful shutdown)."""
    status = health_pb2.HealthCheckResponse.SERVING if healthy else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in names:
        await servicer.set(name, status)


def run(build: Callable[[], Service], *, guard: Admission | None = None) -> None:
    """Entry point for `python -m services.<name>`: exit 0 after a clean stop, 2 with one line on a bad setup."""
    try:
        svc = build()
        logs.configure(svc.name, fmt=svc.settings.log_format, level=svc.settings.log_level)
        asyncio.run(serve(svc, guard=guard))
    except StartupError as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)  # one line, whatever the driver said
        sys.exit(2)
    except asyncio.CancelledError:
        print("stopped during start-up", file=sys.stderr)
    except KeyboardInterrupt:
        pass
