"""Outgoing gRPC: the one place channels are made (services, CLI, tests, bench): mutual TLS with this
process's certificate from the stack CA (common.pki; plaintext only when BJSV_TLS=off), carrying the trace id
and a bearer token; and error translation.

Services present their own identity (common.auth.credentials, role `service`); the CLI, tests and the
bench pass the token of the person or system they act for.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bjsv.documents.v1 import documents_pb2
from bjsv.notify.v1 import notify_pb2
from bjsv.registry.v1 import registry_pb2, supervision_pb2
from bjsv.rules.v1 import rules_pb2
from common import context, pki
from common.auth import credentials
from common.auth.tokens import AUTHORIZATION_KEY
from common.config import Settings
from common.errors import FailedPrecondition, PreconditionViolation, Unavailable

T = TypeVar("T")


_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024), ("grpc.max_send_message_length", 64 * 1024 * 1024)]


class _Context:
    def __init__(self, token: str | None) -> None:
        self.token = token

    async def details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        md = grpc.aio.Metadata(*(details.metadata or ()))
        for key, value in context.outgoing_metadata():
            if key not in md:
                md.add(key, value)
        if AUTHORIZATION_KEY not in md:
            identity = credentials.current()
            if self.token:
                md.add(AUTHORIZATION_KEY, f"Bearer {self.token}")
            elif identity is not None:
                md.add(AUTHORIZATION_KEY, await identity.authorization())
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, md, details.credentials, details.wait_for_ready
        )


class _UnaryUnary(_Context, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(await self.details(client_call_details), request)


class _UnaryStream(_Context, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(await self.details(client_call_details), request)


class _StreamUnary(_Context, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return await continuation(await self.details(client_call_details), request_iterator)


class _StreamStream(_Context, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return await continuation(await self.details(client_call_details), request_iterator)


# A read caught on a replica that dies under it fails UNAVAILABLE; gRPC retries it at once on the next ready
# replica (round-robin), so the caller sees no outage. Only reads: a write's retry is the caller's decision
# (client_request_id), never the channel's. 4 attempts ≥ replicas + the dead one's subchannel still READY.
_READ_RETRY = {
    "maxAttempts": 4,
    "initialBackoff": "0.05s",
    "maxBackoff": "0.5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
_READ_PREFIXES = ("Get", "BatchGet", "List", "Verify")


@functools.cache
def _read_methods() -> list[dict[str, str]]:
    """The side-effect-free methods of every service API (Get…, BatchGet…, List…, Verify…), from the generated
    descriptors."""
    modules = (registry_pb2, supervision_pb2, rules_pb2, documents_pb2, notify_pb2)
    return [
        {"service": service.full_name, "method": method.name}
        for module in modules
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if method.name.startswith(_READ_PREFIXES)
    ]


# The health status of a process's APIs: SERVING from start until it drains. Balancers and kubelet readiness
# and liveness ask it; the overall status ("") also turns NOT_SERVING while background work keeps failing,
# which must not take the APIs out of rotation: a NATS leader election once made every notify replica
# "unhealthy" at once (bench_cluster), though its reads need only the database.
API_HEALTH = "bjsv.api"


def balancing(target: str) -> list[tuple[str, Any]]:
    """Options for a static list of replicas (`ipv4:host:p1,host:p2`, BJSV_<NAME>_TARGET of
    `supervisionctl up --cluster`): round-robin over the replicas whose APIs answer SERVING (API_HEALTH),
    so a dead or draining replica gets no calls. The list is no host name, so the server certificate is
    checked against `localhost`, which every component certificate names (common.pki)."""
    if "," not in target:
        return []
    config = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": API_HEALTH},
        "methodConfig": [{"name": _read_methods(), "retryPolicy": _READ_RETRY}],
    }
    return [("grpc.service_config", json.dumps(config)), ("grpc.ssl_target_name_override", "localhost")]


def channel(
    target: str, *, token: str | None = None, options: Sequence[tuple[str, Any]] = (), settings: Settings | None = None
) -> grpc.aio.Channel:
    """An asyncio channel to a service (host:port, or a balancer address in scale-out). Without `token`, calls
    carry this process's service identity (set by common.server.serve), if any."""
    kinds = (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    # grpc's stub asks for a cast: it types aio interceptors as a partial stub class.
    interceptors: Sequence[Any] = [k(token) for k in kinds]
    opts = [*_OPTIONS, *balancing(target), *options]
    creds = pki.channel_credentials(settings or Settings())
    if creds is None:
        return grpc.aio.insecure_channel(target, interceptors=interceptors, options=opts)
    return grpc.aio.secure_channel(target, creds, interceptors=interceptors, options=opts)


def sync_channel(
    target: str, *, token: str | None = None, options: Sequence[tuple[str, Any]] = (), settings: Settings | None = None
) -> grpc.Channel:
    """A blocking channel (operator CLI, tests, bench) presenting `token` on every call (same credentials)."""
    opts = [*_OPTIONS, *balancing(target), *options]
    creds = pki.channel_credentials(settings or Settings())
    ch = grpc.insecure_channel(target, options=opts) if creds is None else grpc.secure_channel(target, creds, opts)
    if token:
        ch = grpc.intercept_channel(ch, _SyncBearer(token))
    return ch


class _SyncBearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, token: str) -> None:
        self.header = (AUTHORIZATION_KEY, f"Bearer {token}")

    def _details(self, d):
        md = list(d.metadata or ())
        if not any(key == AUTHORIZATION_KEY for key, _ in md):  # a call's own token wins
            md.append(self.header)
        return _SyncDetails(d.method, d.timeout, md, d.credentials, d.wait_for_ready, d.compression)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


class _SyncDetails(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression) -> None:
        self.method, self.timeout, self.metadata = method, timeout, metadata
        self.credentials, self.wait_for_ready, self.compression = credentials, wait_for_ready, compression


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
    # AioRpcError has the code/details/trailing_metadata that from_call reads, but is no grpc.Call in the stubs
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
