"""Workflow integration fixtures: a real nats-server, rules and registry processes on free ports (the
registry serves SupervisionService), the workflow's test clock enabled and the periodic sweep off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from wf_helpers import Clients, workflow_env

from supervisionctl.natsd import free_port
from supervisionctl.stack import Stack, StackConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wf_stack(tmp_path_factory) -> Iterator[Stack]:
    if not (ROOT / "services" / "rules" / "__main__.py").exists():
        pytest.skip("the rules service (services/rules/__main__.py) does not exist yet; the workflow needs it")
    cfg = StackConfig(
        data_dir=tmp_path_factory.mktemp("wf"),
        nats_port=free_port(),
        ports={name: free_port() for name in ("registry", "rules", "documents", "notify")},
        extra_env=workflow_env(),
    )
    stack = Stack(cfg, services=("rules", "registry"))
    stack.start(timeout=90)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def clients(wf_stack: Stack) -> Iterator[Clients]:
    c = Clients(wf_stack.config.target("registry"))
    yield c
    c.close()
