"""SQLAlchemy 2.x tables of the documents service.

`document` holds the metadata and SHA-256 of every rendered document (the digest stands in the audit
trail, D15); its bytes live in `document_chunk` rows so that GetDocument streams without loading a
50 MB print run into memory. `issuer_key` keeps one Ed25519 key per issuing organisation (badge QR
signatures), generated on first use.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.events import platform_tables


class Base(DeclarativeBase):
    pass


platform_tables(Base.metadata)


class Document(Base):
    __tablename__ = "document"
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40), nullable=False)  # DocumentKind name without prefix, lower
    format: Mapped[str] = mapped_column(sa.String(8), nullable=False)  # pdf | docx
    subject: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    media_type: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    file_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    page_count: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    chunk_count: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    # Whom the document belongs to (issue #12, common.auth.scope.Owner); "" matches no one's own-* scope, so a
    # document without an owner is seen only by the roles with scope `any` (city centre, auditor, service).
    owner_district: Mapped[str] = mapped_column(sa.String(60), nullable=False, server_default="")
    owner_institution: Mapped[str] = mapped_column(sa.String(60), nullable=False, server_default="")
    owner_supervisor: Mapped[str] = mapped_column(sa.String(60), nullable=False, server_default="")
    __table_args__ = (
        # the same content rendered for two owners is two documents: each sees its own
        sa.UniqueConstraint(
            "kind",
            "format",
            "subject",
            "sha256",
            "owner_district",
            "owner_institution",
            "owner_supervisor",
            name="uq_document_content_owner",
        ),
        sa.Index("ix_document_subject", "subject", "created_at"),
        sa.Index("ix_document_created", "created_at", "id"),
        sa.Index("ix_document_owner_district", "owner_district", "created_at", "id"),
        sa.Index("ix_document_owner_institution", "owner_institution", "created_at", "id"),
        sa.Index("ix_document_owner_supervisor", "owner_supervisor", "created_at", "id"),
    )


class DocumentChunk(Base):
    __tablename__ = "document_chunk"
    document_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("document.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)


class IssuerKey(Base):
    __tablename__ = "issuer_key"
    issuer: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    key_id: Mapped[str] = mapped_column(sa.String(16), nullable=False, unique=True)
    private_key: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)  # raw 32 bytes
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)  # raw 32 bytes
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
