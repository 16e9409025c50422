"""echo: platform tables and items

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from common.migrations import create_platform_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_platform_tables()
    op.create_table("item", sa.Column("key", sa.String(100), primary_key=True))
