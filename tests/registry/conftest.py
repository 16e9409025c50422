"""Registry integration fixtures: the real registry and rules processes on free ports, a real NATS."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from registry_helpers import RegistryStack, build_stack


@pytest.fixture(scope="module")
def registry_stack(tmp_path_factory, nats_server) -> Iterator[RegistryStack]:
    stack = build_stack(tmp_path_factory.mktemp("registry"), nats_server.url)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def pg_url_module() -> Iterator[tuple[str, str]]:
    """Like the shared `pg_url`, for one module: (DATABASE_URL, schema prefix); schemas dropped after."""
    import uuid

    import sqlalchemy as sa

    from supervisionctl.natsd import port_open

    if not port_open("127.0.0.1", 5432, timeout=0.5):
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432; PostgreSQL variant skipped")
    url = os.environ.get("BJSV_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    prefix = f"r{uuid.uuid4().hex[:8]}_"
    yield url, prefix
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for schema in (
            conn.execute(sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"), {"p": f"{prefix}%"})
            .scalars()
            .all()
        ):
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()
