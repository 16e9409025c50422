"""Registry integration fixtures: the real registry and rules processes on free ports, a real NATS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from registry_helpers import RegistryStack, build_stack


@pytest.fixture(scope="module")
def registry_stack(tmp_path_factory, nats_server) -> Iterator[RegistryStack]:
    stack = build_stack(tmp_path_factory.mktemp("registry"), nats_server.url)
    yield stack
    stack.stop()
