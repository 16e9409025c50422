"""Outgoing gRPC, the one client factory (services, supervisionctl, tests, bench): channels with TLS
credentials that carry the trace id and caller identity on, and error translation."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from common import context, pki
from common.config import Settings
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


_OPTIONS = (("grpc.max_receive_message_length", 64 * 1024 * 1024),)


def channel(
    target: str, *, options: Sequence[tuple[str, Any]] = (), settings: Settings | None = None
) -> grpc.aio.Channel:
    """An asyncio channel to a service (host:port, or a balancer address in scale-out): mutual TLS with this
    process's certificate from the stack CA (see common.pki), plaintext only when BJSV_TLS=off."""
    opts = [*_OPTIONS, *options]
    interceptors = [_UnaryUnary(), _UnaryStream()]
    creds = pki.channel_credentials(settings or Settings())
    if creds is None:
        return grpc.aio.insecure_channel(target, options=opts, interceptors=interceptors)
    return grpc.aio.secure_channel(target, creds, options=opts, interceptors=interceptors)


def sync_channel(
    target: str, *, options: Sequence[tuple[str, Any]] = (), settings: Settings | None = None
) -> grpc.Channel:
    """The blocking twin of `channel()` for supervisionctl, tests and scripts (same credentials)."""
    opts = [*_OPTIONS, *options]
    creds = pki.channel_credentials(settings or Settings())
    if creds is None:
        return grpc.insecure_channel(target, options=opts)
    return grpc.secure_channel(target, creds, options=opts)


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
    status = rpc_status.from_call(e)
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
