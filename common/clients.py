"""Outgoing gRPC: channels that carry the trace id and caller identity on, and error translation."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc

from common import context
from common.errors import Unavailable

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
        interceptors=[_UnaryUnary(), _UnaryStream()],
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )


async def invoke(call: Awaitable[T], *, dependency: str) -> T:
    """Await a call to another service; connectivity failures become a clean UNAVAILABLE for our caller."""
    try:
        return await call
    except grpc.aio.AioRpcError as e:
        if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise Unavailable(
                "DEPENDENCY_UNAVAILABLE", f"{dependency} 服务暂不可用，请稍后重试", metadata={"dependency": dependency}
            ) from None
        raise
