"""documents: the owner of every stored document (issue #12: scoped GetDocument / ListDocuments)

Adds owner_district / owner_institution / owner_supervisor (+ indexes for the scoped, keyset-paged list)
and makes the content key per owner (the same bytes rendered for two owners are two documents).

Backfill, honest: a district report's name carries its district ("reports/08/2026-03-1", 第二十四条), so
those rows get that agency; for every other existing row the owner cannot be known from what was stored,
so it stays empty, which no own-* scope matches: only the city centre, auditors and services see it.

Revision ID: 0003_documents_owner
Revises: 0002_documents_audit_chain
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_documents_owner"
down_revision = "0002_documents_audit_chain"
branch_labels = None
depends_on = None

OWNER = ("owner_district", "owner_institution", "owner_supervisor")
CONTENT = ["kind", "format", "subject", "sha256"]


def _recreate_keeping_chunks(change) -> None:
    """SQLite changes a table's constraints by copying it; dropping the old `document` cascades to
    document_chunk (foreign keys are on), so its rows are kept aside and put back."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("CREATE TABLE _document_chunk_keep AS SELECT document_id, seq, data FROM document_chunk")
    with op.batch_alter_table("document") as batch:
        change(batch)
    if sqlite:
        op.execute("DELETE FROM document_chunk")
        op.execute(
            "INSERT INTO document_chunk (document_id, seq, data)"
            " SELECT document_id, seq, data FROM _document_chunk_keep"
        )
        op.execute("DROP TABLE _document_chunk_keep")


def _backfill() -> None:
    document = sa.table(
        "document", sa.column("id"), sa.column("kind"), sa.column("subject"), sa.column("owner_district")
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(document.c.id, document.c.subject).where(document.c.kind == "district_report"))
    for doc_id, subject in rows.all():
        parts = subject.split("/")
        if len(parts) >= 3 and parts[0] == "reports" and parts[1]:
            conn.execute(document.update().where(document.c.id == doc_id).values(owner_district=f"agencies/{parts[1]}"))


def upgrade() -> None:
    def change(batch) -> None:
        for column in OWNER:
            batch.add_column(sa.Column(column, sa.String(60), nullable=False, server_default=""))
        batch.drop_constraint("uq_document_content", type_="unique")
        batch.create_unique_constraint("uq_document_content_owner", [*CONTENT, *OWNER])

    _recreate_keeping_chunks(change)
    for column in OWNER:
        op.create_index(f"ix_document_{column}", "document", [column, "created_at", "id"])
    _backfill()


def downgrade() -> None:
    for column in OWNER:
        op.drop_index(f"ix_document_{column}", table_name="document")

    def change(batch) -> None:
        batch.drop_constraint("uq_document_content_owner", type_="unique")
        for column in OWNER:
            batch.drop_column(column)
        batch.create_unique_constraint("uq_document_content", CONTENT)

    _recreate_keeping_chunks(change)
