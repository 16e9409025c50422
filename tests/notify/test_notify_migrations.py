"""The notify migrations create exactly the tables the models declare (SQLite; PostgreSQL when reachable)."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from common.db import Database
from services.notify.__main__ import build
from services.notify.config import NotifySettings
from services.notify.storage import models


def diffs(db: Database) -> list:
    db.migrate()
    db.migrate()  # idempotent
    with db.write_engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), models.Base.metadata)


def test_sqlite_migrations_match_models(tmp_path):
    db = build(NotifySettings(data_dir=tmp_path, smtp_host="")).database
    try:
        assert diffs(db) == []
    finally:
        db.dispose()


@pytest.mark.postgres
def test_postgresql_migrations_match_models(tmp_path, pg_url):
    url, prefix = pg_url
    db = build(NotifySettings(data_dir=tmp_path, smtp_host="", database_url=url, db_schema_prefix=prefix)).database
    try:
        assert diffs(db) == []
    finally:
        db.dispose()
