"""End-to-end fixtures for the supervision workflow: the four services and a real nats-server as processes
(exactly what `supervisionctl up` runs), with the workflow's and notify's test clocks enabled so deadlines
are fast-forwarded instead of waited for."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))  # wf_helpers (shared seeding code)

from wf_helpers import workflow_env

from supervisionctl.natsd import free_port
from supervisionctl.stack import Stack, StackConfig

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("rules", "registry", "documents", "notify")


@pytest.fixture(scope="module")
def e2e_stack(tmp_path_factory) -> Iterator[Stack]:
    missing = [s for s in SERVICES if not (ROOT / "services" / s / "__main__.py").exists()]
    if missing:
        pytest.skip(f"services without a composition root yet: {', '.join(missing)}")
    cfg = StackConfig(
        data_dir=tmp_path_factory.mktemp("e2e"),
        nats_port=free_port(),
        ports={name: free_port() for name in SERVICES},
        extra_env=workflow_env(BJSV_LOG_LEVEL="INFO"),
    )
    stack = Stack(cfg, services=SERVICES)
    stack.start(timeout=120)
    yield stack
    stack.stop()
