"""Fixtures of the documents tests: the real documents service in-process on a free port (SQLite in a tmp
dir, a real nats-server from the root conftest), a gRPC channel and a JetStream context."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass

import grpc
import nats
import pytest

from bjsv.documents.v1 import documents_pb2_grpc
from common import pki
from common.server import serve
from services.documents.__main__ import build
from services.documents.config import DocumentsSettings
from supervisionctl.natsd import free_port
from tests import auth_support


@dataclass
class DocumentsEnv:
    stub: documents_pb2_grpc.DocumentsServiceStub
    channel: grpc.aio.Channel
    nc: object
    js: object
    port: int
    target: str


@pytest.fixture(scope="module")
async def docs_env(nats_server, tmp_path_factory):
    port = free_port()
    settings = DocumentsSettings(
        data_dir=tmp_path_factory.mktemp("documents"),
        documents_port=port,
        nats_url=nats_server.url,
        registry_port=free_port(),
        shutdown_grace=0.5,
        documents_chunk_size=64 * 1024,
        documents_registry_timeout=2.0,
    )
    svc = build(settings)
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(svc, ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 20)
    nc = await nats.connect(nats_server.url, tls=pki.ssl_context())
    channel = auth_support.aio_channel(f"127.0.0.1:{port}")
    yield DocumentsEnv(
        documents_pb2_grpc.DocumentsServiceStub(channel), channel, nc, nc.jetstream(), port, f"127.0.0.1:{port}"
    )
    await channel.close()
    await nc.close()
    stop.set()
    await asyncio.wait_for(task, 15)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
