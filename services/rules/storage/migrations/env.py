"""Alembic environment of the rules service (runs on the connection Database.migrate provides)."""

from common.migrations import run_env

run_env()
