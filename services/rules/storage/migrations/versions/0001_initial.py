"""rules: decision log and rule-set versions

Revision ID: 0001_rules_initial
Revises:
"""

import sqlalchemy as sa
from alembic import op

from common.migrations import create_platform_tables

revision = "0001_rules_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables()
    op.create_table(
        "decision",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("kind", sa.Integer, nullable=False),
        sa.Column("outcome", sa.Integer, nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("as_of_date", sa.String(10), nullable=False),
        sa.Column("ruleset_id", sa.String(50), nullable=False),
        sa.Column("ruleset_version", sa.String(64), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("input_digest", sa.String(64), nullable=False),
        sa.Column("input_type", sa.String(120), nullable=False),
        sa.Column("input", sa.LargeBinary, nullable=False),
        sa.Column("result_type", sa.String(120), nullable=False),
        sa.Column("result", sa.LargeBinary, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False, server_default=""),
        sa.Column("trace_id", sa.String(64), nullable=False, server_default=""),
    )
    op.create_index("ix_decision_subject", "decision", ["subject"])
    op.create_table(
        "ruleset_version",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("ruleset_id", sa.String(50), nullable=False),
        sa.Column("effective_from", sa.String(10), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("overrides", sa.Text, nullable=False),
        sa.Column("first_loaded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ruleset_version")
    op.drop_index("ix_decision_subject", table_name="decision")
    op.drop_table("decision")
