"""End-to-end fixtures for the supervision workflow: the four services and a real nats-server as processes
(exactly what `supervisionctl up` runs), with the workflow's and notify's test clocks enabled so deadlines
are fast-forwarded instead of waited for."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))  # wf_helpers (shared seeding code)

from wf_helpers import workflow_env

from supervisionctl.natsd import free_port
from supervisionctl.stack import Stack, StackConfig

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("rules", "registry", "documents", "notify")


class SmtpSink:
    """A real SMTP server on loopback recording every message notify sends (e-mail channel)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list = []
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.controller.start()
    yield sink
    sink.controller.stop()


@pytest.fixture(scope="module")
def e2e_stack(tmp_path_factory, smtp: SmtpSink) -> Iterator[Stack]:
    missing = [s for s in SERVICES if not (ROOT / "services" / s / "__main__.py").exists()]
    if missing:
        pytest.skip(f"services without a composition root yet: {', '.join(missing)}")
    cfg = StackConfig(
        data_dir=tmp_path_factory.mktemp("e2e"),
        nats_port=free_port(),
        ports={name: free_port() for name in SERVICES},
        extra_env=workflow_env(BJSV_LOG_LEVEL="INFO", BJSV_SMTP_HOST="127.0.0.1", BJSV_SMTP_PORT=str(smtp.port)),
    )
    stack = Stack(cfg, services=SERVICES)
    stack.start(timeout=120)
    yield stack
    stack.stop()
