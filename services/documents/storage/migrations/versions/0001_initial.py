"""documents: rendered documents (metadata + chunks) and issuer signing keys

Revision ID: 0001_documents_initial
Revises:
"""

import sqlalchemy as sa
from alembic import op

from common.migrations import create_platform_tables

revision = "0001_documents_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables()
    op.create_table(
        "document",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(120), nullable=False),
        sa.Column("file_name", sa.String(200), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("page_count", sa.Integer, nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "format", "subject", "sha256", name="uq_document_content"),
    )
    op.create_index("ix_document_subject", "document", ["subject", "created_at"])
    op.create_index("ix_document_created", "document", ["created_at", "id"])
    op.create_table(
        "document_chunk",
        sa.Column("document_id", sa.String(32), sa.ForeignKey("document.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "issuer_key",
        sa.Column("issuer", sa.String(120), primary_key=True),
        sa.Column("key_id", sa.String(16), nullable=False, unique=True),
        sa.Column("private_key", sa.LargeBinary, nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("issuer_key")
    op.drop_table("document_chunk")
    op.drop_table("document")
