"""A plaintext health port for kubelet probes.

Kubernetes' gRPC probes cannot present a client certificate, and every service port requires mutual TLS. A second
gRPC server on BJSV_HEALTH_PROBE_PORT carries the health service only — it answers SERVING / NOT_SERVING and
nothing else (no data, no other RPC) — so the mutual-TLS port stays the only way to the APIs.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import _async as health_aio  # what `health.aio` re-exports, which mypy cannot see
from grpc_health.v1 import health_pb2_grpc

from common.config import Settings
from common.db import StartupError


async def start(settings: Settings, servicer: health_aio.HealthServicer) -> grpc.aio.Server | None:
    """The probe server sharing `servicer` (same status as the TLS port), or None when no port is set."""
    if not settings.health_probe_port:
        return None
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    address = f"{settings.bind_host}:{settings.health_probe_port}"
    if not server.add_insecure_port(address):
        raise StartupError(f"cannot listen on {address} for health probes. Fix: set BJSV_HEALTH_PROBE_PORT.")
    await server.start()
    return server
