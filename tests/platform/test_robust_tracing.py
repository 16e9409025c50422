"""OpenTelemetry traces over OTLP (issue 13, observability): with OTEL_EXPORTER_OTLP_ENDPOINT set, each RPC
and each consumed event is a span whose trace id is the platform's travelling trace id (gRPC `x-trace-id`,
the envelope's `trace_id`). A real OTLP/gRPC receiver in the test collects what the services export."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from concurrent import futures

import grpc
import nats
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from bjsv.registry.v1 import events_pb2 as registry_events
from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from common import pki
from common.events import outbox_row
from supervisionctl.natsd import free_port
from supervisionctl.stack import Stack
from tests import auth_support
from tests.conftest import stack_config


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str, int]] = []  # (service, name, trace id hex, status code)
        self.lock = threading.Lock()

    def Export(self, request, context):
        with self.lock:
            for rs in request.resource_spans:
                service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
                for ss in rs.scope_spans:
                    self.spans += [(service, s.name, s.trace_id.hex(), s.status.code) for s in ss.spans]
        return trace_service_pb2.ExportTraceServiceResponse()

    def of_trace(self, trace_id: str) -> list[tuple[str, str, str, int]]:
        with self.lock:
            return [s for s in self.spans if s[2] == trace_id]


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    receiver = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_BSP_SCHEDULE_DELAY": "200"}
    stack = Stack(stack_config(tmp_path_factory.mktemp("traced"), **otel), services=("rules", "notify"))
    stack.start(timeout=90)
    yield stack, receiver
    stack.stop()
    server.stop(0)


def wait_for(receiver: Receiver, trace_id: str, seconds: float = 15.0) -> list:
    deadline = time.monotonic() + seconds
    while not receiver.of_trace(trace_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    return receiver.of_trace(trace_id)


def test_an_rpc_is_a_server_span_carrying_the_callers_trace_id(traced):
    stack, receiver = traced
    trace_id = uuid.uuid4().hex
    # an empty request is refused: the span records that too
    with auth_support.channel(stack.config.target("rules")) as ch, pytest.raises(grpc.RpcError) as e:
        rules_pb2_grpc.RulesServiceStub(ch).CheckEligibility(
            rules_pb2.CheckEligibilityRequest(), metadata=(("x-trace-id", trace_id),), timeout=10
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    spans = wait_for(receiver, trace_id)
    assert [(s[0], s[1]) for s in spans] == [("bjsv-rules", "/bjsv.rules.v1.RulesService/CheckEligibility")]
    assert spans[0][3] == 2  # STATUS_CODE_ERROR


def test_an_event_consumed_in_another_service_continues_the_trace_it_was_published_in(traced):
    stack, receiver = traced
    trace_id = uuid.uuid4().hex
    row = outbox_row(
        source="registry",
        type="appointment.started",
        subject="appointments/1",
        payload=registry_events.AppointmentStarted(),
        trace_id=trace_id,
        actor="agencies/A",
    )

    async def publish() -> None:
        nc = await nats.connect(stack.config.nats_url, tls=pki.ssl_context())
        try:
            await nc.jetstream().publish(row["nats_subject"], row["envelope"], headers={"Nats-Msg-Id": row["event_id"]})
        finally:
            await nc.close()

    asyncio.run(publish())
    spans = wait_for(receiver, trace_id)
    assert ("bjsv-notify", "consume appointment.started") in [(s[0], s[1]) for s in spans]
