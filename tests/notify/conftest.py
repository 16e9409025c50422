"""Fixtures of the notify tests: the real notify service in-process on a free port, a real nats-server
(root conftest), a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from notify_support import SmtpSink, start_inprocess, stop_inprocess

from bjsv.notify.v1 import notify_pb2_grpc
from common import pki
from supervisionctl.natsd import free_port
from tests import auth_support


@dataclass
class NotifyEnv:
    stub: notify_pb2_grpc.NotifyServiceStub
    js: object
    nc: object
    smtp: SmtpSink
    port: int
    nats_url: str
    calendar_file: Path  # the operator calendar file the service was configured with (settings.calendar_file)


@pytest.fixture(scope="module")
async def notify_env(nats_server, tmp_path_factory):
    smtp = SmtpSink(free_port()).start()
    data_dir = tmp_path_factory.mktemp("notify")
    port, stop, task = await start_inprocess(data_dir, nats_server.url, smtp)
    nc = await nats.connect(nats_server.url, tls=pki.ssl_context())
    channel = auth_support.aio_channel(f"127.0.0.1:{port}")
    yield NotifyEnv(
        stub=notify_pb2_grpc.NotifyServiceStub(channel),
        js=nc.jetstream(),
        nc=nc,
        smtp=smtp,
        port=port,
        nats_url=nats_server.url,
        calendar_file=data_dir / "calendar.yaml",
    )
    await channel.close()
    await nc.close()
    await stop_inprocess(stop, task)
    smtp.stop()
