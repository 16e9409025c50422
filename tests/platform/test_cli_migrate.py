"""`supervisionctl migrate` brings every service's database to head, on SQLite and on PostgreSQL, and is
safe to repeat (the same migrations run on both)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from common.config import SERVICES
from supervisionctl.main import app
from tests.platform.echo_process import EchoProcess


def test_migrate_creates_one_sqlite_file_per_service_and_is_repeatable(tmp_path, monkeypatch):
    monkeypatch.setenv("BJSV_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for _ in range(2):
        result = CliRunner().invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
    for service in SERVICES:
        engine = sa.create_engine(f"sqlite:///{tmp_path / f'{service}.db'}")
        tables = set(sa.inspect(engine).get_table_names())
        engine.dispose()
        assert {"alembic_version", "outbox", "processed_event"} <= tables, (service, tables)


@pytest.mark.postgres
def test_migrate_creates_one_schema_per_service_on_postgresql(tmp_path, monkeypatch, pg_url):
    url, prefix = pg_url
    monkeypatch.setenv("BJSV_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("BJSV_DB_SCHEMA_PREFIX", prefix)
    for _ in range(2):
        result = CliRunner().invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    for service in SERVICES:
        assert {"alembic_version", "outbox"} <= set(inspector.get_table_names(schema=f"{prefix}{service}"))
    engine.dispose()


def test_a_service_that_must_not_migrate_refuses_a_schema_behind_its_code_then_starts_once_migrated(
    tmp_path, nats_server
):
    # Kubernetes: a Job migrates before the rollout; the services start with BJSV_MIGRATE_ON_START=false.
    echo = EchoProcess(tmp_path / "echo", nats_server.url, BJSV_MIGRATE_ON_START="false")
    refused = echo.run_to_exit()
    assert refused.returncode == 2
    assert "database is at revision none" in refused.stderr and "supervisionctl migrate" in refused.stderr
    assert "Traceback" not in refused.stderr
    EchoProcess(tmp_path / "echo", nats_server.url).start().terminate()  # migrates at start (the default)
    started = echo.start()
    assert started.terminate() == 0
