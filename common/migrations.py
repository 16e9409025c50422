"""Alembic glue shared by every service's migrations/env.py, and the platform tables migration helper."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op


def run_env() -> None:
    """Body of each service's migrations/env.py: run on the connection `Database.migrate` provides."""
    config = context.config
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=config.attributes.get("target_metadata"),
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def create_platform_tables() -> None:
    """Call from a service's first migration: the outbox and processed-event tables (common.events)."""
    from common.events import platform_tables

    for table in platform_tables(sa.MetaData()).values():
        table.create(op.get_bind())
