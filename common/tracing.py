"""OpenTelemetry traces of RPCs and consumed events, exported over OTLP when configured.

Configured by the standard OpenTelemetry variables: nothing is exported unless `OTEL_EXPORTER_OTLP_ENDPOINT`
(or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; then every service sends its spans to that collector as
`bjsv-<service>`. The platform's trace id already travels (gRPC metadata `x-trace-id`, the event envelope's
`trace_id`), so spans take it as their OpenTelemetry trace id: an RPC, the calls it makes and the events it
causes, in every service, form one trace.
"""

from __future__ import annotations

import os
import re

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from common import context

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_tracer: trace.Tracer | None = None  # set by configure() when spans are exported; otherwise spans are skipped


class TraceIdFromContext(RandomIdGenerator):
    """A span's trace id is the request's or event's trace id (common.context) when it is a 128-bit hex id."""

    def generate_trace_id(self) -> int:
        current = context.current_trace_id()
        if _TRACE_ID.fullmatch(current) and int(current, 16):
            return int(current, 16)
        return super().generate_trace_id()


_ROOT = trace.set_span_in_context(trace.INVALID_SPAN)  # parent of every span: none (a root)


def configure(service: str) -> None:
    """Install the OTLP exporter for this process if an endpoint is configured (otherwise spans are no-ops)."""
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(
        resource=Resource.create({"service.name": f"bjsv-{service}"}), id_generator=TraceIdFromContext()
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    global _tracer
    _tracer = provider.get_tracer("bjsv")


def shutdown() -> None:
    """Export what is buffered (at the end of a graceful stop)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def start(name: str, kind: SpanKind, **attributes: str) -> Span:
    """A span the caller ends (a root span: its trace id comes from the bound context). Without an exporter,
    the shared no-op span: a call then costs nothing for tracing."""
    if _tracer is None:
        return trace.INVALID_SPAN
    return _tracer.start_span(name, kind=kind, attributes=attributes, context=_ROOT)


def finish(span: Span, *, failed: str = "") -> None:
    if failed:
        span.set_status(Status(StatusCode.ERROR, failed))
    span.end()
