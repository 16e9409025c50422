"""rules: shared input parts (a ProposeTeam pool stored once per content digest, not once per decision)

Revision ID: 0002_rules_input_parts
Revises: 0001_rules_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_rules_input_parts"
down_revision = "0001_rules_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "input_part",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.add_column("decision", sa.Column("input_part_digest", sa.String(64), nullable=True))
    op.add_column("decision", sa.Column("input_part_offset", sa.Integer, nullable=True))


def downgrade() -> None:
    op.drop_column("decision", "input_part_offset")
    op.drop_column("decision", "input_part_digest")
    op.drop_table("input_part")
