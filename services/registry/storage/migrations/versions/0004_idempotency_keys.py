"""idempotency keys (issue 13, AIP-155): one row per request_id of a create/issue/submit RPC, written in the
transaction of the change (common.idempotency).

Revision ID: 0004_idempotency_keys
Revises: 0003_workflow_clock
"""

from alembic import op

from common import idempotency

revision = "0004_idempotency_keys"
down_revision = "0003_workflow_clock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    idempotency.create_table()


def downgrade() -> None:
    op.drop_table(idempotency.TABLE)
