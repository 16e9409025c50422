"""registry: the tamper-evident audit chain (common.audit; 第二十二条, 第二十六条, 第二十七条)

Revision ID: 0004_registry_audit_chain
Revises: 0003_workflow_clock
"""

from alembic import op

from common import audit

revision = "0004_registry_audit_chain"
down_revision = "0003_workflow_clock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    audit.create_tables()


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_table("audit_entry")
