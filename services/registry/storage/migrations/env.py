"""Alembic environment of the registry process (registry + workflow tables; runs on the connection
Database.migrate provides)."""

from common.migrations import run_env

run_env()
