"""idempotency keys (issue 13, AIP-155): one row per request_id of a create/issue/submit RPC, written in the
transaction of the change (common.idempotency).

Revision ID: 0006_idempotency_keys
Revises: 0005_fidelity_records
"""

from alembic import op

from common import idempotency

revision = "0006_idempotency_keys"
down_revision = "0005_fidelity_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    idempotency.create_table()


def downgrade() -> None:
    op.drop_table(idempotency.TABLE)
