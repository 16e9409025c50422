"""The shared platform, exercised through a real writer service (echo_service) over real connections:
gRPC health/reflection, the error model, trace propagation into events, the transactional outbox under
SIGKILL and NATS restarts, graceful SIGTERM, and one-line startup errors."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import uuid

import grpc
import nats
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from bjsv.events.v1 import envelope_pb2
from common import pki
from supervisionctl.natsd import NatsServer, free_port
from tests import auth_support
from tests.platform.echo_process import EchoProcess

SERVICE = "bjsv.test.v1.EchoService"


def call(target: str, method: str, data: bytes = b"", **kw) -> bytes:
    with auth_support.channel(target) as ch:
        return ch.unary_unary(f"/{SERVICE}/{method}")(data, timeout=10, **kw)


async def collect_events(url: str, durable: str, want: int, wait: float = 15.0) -> list[envelope_pb2.EventEnvelope]:
    """Read BJSV_ECHO with a fresh durable consumer until `want` events arrived (or `wait` seconds passed), then
    read 1 s more so duplicates would be seen."""
    nc = await nats.connect(url, tls=pki.ssl_context())
    js = nc.jetstream()
    sub = await js.pull_subscribe("bjsv.echo.>", durable=durable, stream="BJSV_ECHO")
    got: list[envelope_pb2.EventEnvelope] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    extra_until = None
    while loop.time() < deadline:
        if len(got) >= want and extra_until is None:
            extra_until = loop.time() + 1.0
        if extra_until and loop.time() > extra_until:
            break
        try:
            msgs = await sub.fetch(100, timeout=0.3)
        except (nats.errors.TimeoutError, TimeoutError):
            continue
        for m in msgs:
            env = envelope_pb2.EventEnvelope()
            env.ParseFromString(m.data)
            got.append(env)
            await m.ack()
    await nc.close()
    return got


@pytest.fixture(scope="module")
def echo(tmp_path_factory, nats_server):
    proc = EchoProcess(tmp_path_factory.mktemp("echo"), nats_server.url).start()
    yield proc
    proc.kill()


def test_health_reports_serving_overall_and_per_service(echo):
    with auth_support.channel(echo.target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for name in ("", SERVICE):
            status = stub.Check(health_pb2.HealthCheckRequest(service=name)).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as e:
            stub.Check(health_pb2.HealthCheckRequest(service="bjsv.nope.v1.Nope"))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_service(echo):
    with auth_support.channel(echo.target) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


def test_bad_input_is_invalid_argument_with_field_violation_and_reason(echo):
    with pytest.raises(grpc.RpcError) as e:
        call(echo.target, "Invalid")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(e.value)
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info) and info.reason == "ECHO_KEY_REQUIRED" and info.domain == "bjsv.echo"
    assert status.details[1].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [("key", "键不能为空")]


def test_unexpected_error_is_internal_with_trace_id_and_no_traceback(echo):
    with pytest.raises(grpc.RpcError) as e:
        call(echo.target, "Crash", metadata=[("x-trace-id", "trace-crash-1")])
    assert e.value.code() == grpc.StatusCode.INTERNAL
    assert "trace-crash-1" in e.value.details()
    assert "secret internal detail" not in e.value.details() and "Traceback" not in e.value.details()
    # …while the log keeps the full story under the same trace id.
    log = echo.log.read_text()
    assert "trace-crash-1" in log and "secret internal detail" in log


async def test_event_carries_trace_id_and_caller_and_is_published_once(echo, nats_server):
    key = uuid.uuid4().hex
    call(
        echo.target,
        "Record",
        key.encode(),
        metadata=[("x-trace-id", "trace-rec-1"), *auth_support.bearer("agencies/08", "district-agency")],
    )
    events = await collect_events(nats_server.url, f"t{uuid.uuid4().hex[:8]}", want=1)
    mine = [e for e in events if e.subject == f"items/{key}"]
    assert len(mine) == 1
    env = mine[0]
    assert (env.type, env.source, env.trace_id, env.actor) == ("item.recorded", "echo", "trace-rec-1", "agencies/08")
    payload = StringValue()
    assert env.payload.Unpack(payload) and payload.value == key


async def test_sigkill_after_commit_before_publish_delivers_exactly_once_after_restart(tmp_path):
    nats_srv = NatsServer(store_dir=tmp_path / "nats", port=free_port())
    nats_srv.start()
    echo = EchoProcess(tmp_path / "echo", nats_srv.url).start()
    try:
        call(echo.target, "Record", b"warmup")  # stream exists, relay connected
        await collect_events(nats_srv.url, "warm", want=1)
        os.kill(nats_srv.proc.pid, signal.SIGSTOP)  # NATS frozen: the relay cannot publish
        call(echo.target, "Record", b"crash-window")  # committed to the DB and the outbox
        echo.kill()  # SIGKILL between commit and publish
        os.kill(nats_srv.proc.pid, signal.SIGCONT)
        echo.start()  # the relay finds the unpublished row
        events = await collect_events(nats_srv.url, "after", want=2)
        assert sorted(e.subject for e in events) == ["items/crash-window", "items/warmup"]
    finally:
        echo.kill()
        nats_srv.stop()


async def test_nats_restart_mid_stream_loses_no_accepted_event(tmp_path):
    port = free_port()
    nats_srv = NatsServer(store_dir=tmp_path / "nats", port=port)
    nats_srv.start()
    echo = EchoProcess(tmp_path / "echo", nats_srv.url).start()
    try:
        for i in range(10):
            call(echo.target, "Record", f"before-{i}".encode())
        nats_srv.stop()  # NATS goes away mid-stream; the service keeps accepting calls
        for i in range(10):
            call(echo.target, "Record", f"during-{i}".encode())
        nats_srv = NatsServer(store_dir=tmp_path / "nats", port=port)
        nats_srv.start()  # same store: the stream is still there
        for i in range(10):
            call(echo.target, "Record", f"after-{i}".encode())
        events = await collect_events(nats_srv.url, "all", want=30, wait=30)
        subjects = [e.subject for e in events]
        assert len(subjects) == 30 and len(set(subjects)) == 30
    finally:
        echo.kill()
        nats_srv.stop()


async def test_sigterm_during_burst_completes_or_cleanly_rejects_every_call_and_exits_zero(tmp_path, nats_server):
    echo = EchoProcess(tmp_path / "echo", nats_server.url).start()
    async with auth_support.aio_channel(echo.target) as ch:
        slow = ch.unary_unary(f"/{SERVICE}/SlowRecord")
        calls = [asyncio.ensure_future(slow(f"burst-{i}".encode(), timeout=20)) for i in range(20)]
        await asyncio.sleep(0.4)  # all 20 are in flight (each takes 1 s)
        echo.proc.send_signal(signal.SIGTERM)
        late = [asyncio.ensure_future(slow(f"late-{i}".encode(), timeout=5)) for i in range(5)]
        results = await asyncio.gather(*calls, *late, return_exceptions=True)
    code = await asyncio.to_thread(echo.proc.wait, 15)
    assert code == 0
    accepted = [r for r in results[:20] if r == b"ok"]
    assert len(accepted) == 20, results[:20]  # in flight before SIGTERM: all completed
    for r in results[20:]:  # after SIGTERM: rejected with a status, never hung or half-done
        assert r == b"ok" or (isinstance(r, grpc.aio.AioRpcError) and r.code() == grpc.StatusCode.UNAVAILABLE)
    events = await collect_events(nats_server.url, f"b{uuid.uuid4().hex[:6]}", want=20)
    published = {e.subject for e in events}
    assert {f"items/burst-{i}" for i in range(20)} <= published


def test_port_in_use_is_one_line_error_and_nonzero_exit(tmp_path, nats_server):
    echo = EchoProcess(tmp_path / "echo", nats_server.url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", echo.port))
        s.listen()
        result = echo.run_to_exit()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and f"127.0.0.1:{echo.port}" in lines[0] and "BJSV_ECHO_PORT" in lines[0]


def test_unreachable_database_url_is_one_line_error(tmp_path, nats_server):
    bad = EchoProcess(tmp_path / "echo", nats_server.url, DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = bad.run_to_exit()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "DATABASE_URL" in lines[0]


def test_unreachable_nats_is_one_line_error(tmp_path):
    bad = EchoProcess(tmp_path / "echo", f"nats://127.0.0.1:{free_port()}", BJSV_NATS_CONNECT_TIMEOUT="1.5")
    result = bad.run_to_exit()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "BJSV_NATS_URL" in lines[0]


@pytest.mark.postgres
async def test_outbox_on_postgresql_publishes_each_event_once(tmp_path, nats_server, pg_url):
    url, prefix = pg_url
    echo = EchoProcess(tmp_path / "echo", nats_server.url, DATABASE_URL=url, BJSV_DB_SCHEMA_PREFIX=prefix).start()
    try:
        keys = [f"pg-{uuid.uuid4().hex[:6]}-{i}" for i in range(25)]
        for k in keys:
            call(echo.target, "Record", k.encode())
        events = await collect_events(nats_server.url, f"pg{uuid.uuid4().hex[:6]}", want=25)
        mine = [e.subject for e in events if e.subject.startswith("items/pg-")]
        assert sorted(mine) == sorted(f"items/{k}" for k in keys)
    finally:
        echo.kill()


@pytest.mark.postgres
def test_a_database_connection_lost_under_a_call_is_unavailable_and_the_next_call_reconnects(
    tmp_path, nats_server, pg_url
):
    url, prefix = pg_url
    echo = EchoProcess(tmp_path / "echo", nats_server.url, DATABASE_URL=url, BJSV_DB_SCHEMA_PREFIX=prefix).start()
    try:
        for method in ("LoseDatabase", "LoseDirectConnection"):  # through SQLAlchemy, and psycopg directly
            with pytest.raises(grpc.RpcError) as e:
                call(echo.target, method)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
            info = error_details_pb2.ErrorInfo()
            assert rpc_status.from_call(e.value).details[0].Unpack(info) and info.reason == "DATABASE_UNAVAILABLE"
            assert call(echo.target, "Record", f"after-{uuid.uuid4().hex[:6]}".encode()) == b"ok"
    finally:
        echo.kill()


def test_sigterm_while_waiting_for_nats_at_start_up_stops_at_once(tmp_path):
    waiting = EchoProcess(tmp_path / "echo", f"nats://127.0.0.1:{free_port()}", BJSV_NATS_CONNECT_TIMEOUT="60")
    waiting.start(wait=False)
    deadline = time.monotonic() + 30  # imported, migrated, now retrying NATS: its connect errors are logged
    while "nats error" not in waiting.log.read_text():
        assert time.monotonic() < deadline, waiting.log.read_text()[-2000:]
        time.sleep(0.1)
    started = time.monotonic()
    code = waiting.terminate(timeout=10)
    assert code == 0 and time.monotonic() - started < 5
