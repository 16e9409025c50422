"""echo: the tamper-evident audit chain (common.audit; 第二十二条, 第二十六条, 第二十七条)

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from common import audit

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    audit.create_tables()


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_table("audit_entry")
