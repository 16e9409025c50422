"""Outgoing gRPC: channels that carry the trace id and caller identity on, and error translation."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from common import context
from common.errors import FailedPrecondition, PreconditionViolation, Unavailable

T = TypeVar("T")


def _with_context(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    md = grpc.aio.Metadata(*(details.metadata or ()))
    for key, value in context.outgoing_metadata():
        if key not in md:
            md.add(key, value)
    return grpc.aio.ClientCallDetails(details.method, details.timeout, md, details.credentials, details.wait_for_ready)


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(_with_context(client_call_details), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(_with_context(client_call_details), request)


def channel(target: str) -> grpc.aio.Channel:
    """A channel to another service (host:port, or a balancer address in scale-out)."""
    return grpc.aio.insecure_channel(
        target,
        # typeshed types this parameter as a sentinel that asks callers to ignore it (_PartialStubMustCastOrIgnore).
        interceptors=[_UnaryUnary(), _UnaryStream()],  # type: ignore[list-item]
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )


async def invoke(call: Awaitable[T], *, dependency: str) -> T:
    """Await a call to another service. Connectivity failures become a clean UNAVAILABLE for our caller; a
    refusal (FAILED_PRECONDITION / INVALID_ARGUMENT: e.g. no rule set in force on that date) becomes our
    FAILED_PRECONDITION with the dependency's reason and violations, so the official sees why."""
    try:
        return await call
    except grpc.aio.AioRpcError as e:
        if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise Unavailable(
                "DEPENDENCY_UNAVAILABLE", f"{dependency} 服务暂不可用，请稍后重试", metadata={"dependency": dependency}
            ) from None
        if e.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
            raise _refusal(e, dependency) from None
        raise


def _refusal(e: grpc.aio.AioRpcError, dependency: str) -> FailedPrecondition:
    reason, violations = f"{dependency.upper()}_REFUSED", []
    # AioRpcError has the code()/details()/trailing_metadata() from_call reads; the stub only names grpc.Call.
    status = rpc_status.from_call(e)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason or reason
        elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            pf = error_details_pb2.PreconditionFailure()
            detail.Unpack(pf)
            violations += [PreconditionViolation(v.type, v.subject, v.description) for v in pf.violations]
    return FailedPrecondition(
        reason,
        violations or [PreconditionViolation(f"bjsv.{dependency}", "", e.details() or "")],
        message=e.details() or None,
        metadata={"dependency": dependency},
    )
