"""workflow test clock (issue #11): one stored row so every registry replica agrees on the workflow's "now".

Revision ID: 0003_workflow_clock
Revises: 0002_supervision_workflow
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_workflow_clock"
down_revision = "0002_supervision_workflow"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflow_clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fixed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("workflow_clock")
