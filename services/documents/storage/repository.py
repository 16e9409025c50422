"""Repository of the documents service: plain functions taking the session first (run by
`Database.write/read` inside one transaction), the rest keyword-only. Returns plain dataclasses."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bjsv.documents.v1 import events_pb2
from common.events import mark_processed, record_event
from services.documents.domain import signing
from services.documents.storage.models import Document, DocumentChunk, IssuerKey

EVENT_RENDERED = "document.rendered"


@dataclass(frozen=True, slots=True)
class NewDocument:
    kind: str
    format: str
    subject: str
    media_type: str
    file_name: str
    content: bytes
    page_count: int


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    id: str
    kind: str
    format: str
    subject: str
    media_type: str
    file_name: str
    size_bytes: int
    sha256: str
    page_count: int
    chunk_count: int
    created_at: dt.datetime

    @property
    def name(self) -> str:
        return f"documents/{self.id}"


def _info(row: Document) -> DocumentInfo:
    return DocumentInfo(
        row.id,
        row.kind,
        row.format,
        row.subject,
        row.media_type,
        row.file_name,
        row.size_bytes,
        row.sha256,
        row.page_count,
        row.chunk_count,
        row.created_at,
    )


def store_document(
    session: Session, doc: NewDocument, *, chunk_size: int, now: dt.datetime, processed: tuple[str, str] | None = None
) -> tuple[DocumentInfo | None, bool]:
    """Store a rendered document with its SHA-256 and publish `document.rendered` (outbox, same
    transaction). Rendering is deterministic, so the same (kind, format, subject, digest) is the same
    document: a re-render (e.g. a redelivered event) returns the stored one and publishes nothing.
    `processed=(consumer, event_id)` marks an event handled in the same transaction; an event already
    handled by that consumer stores nothing and returns (None, False)."""
    if processed is not None and not mark_processed(session, consumer=processed[0], event_id=processed[1]):
        return None, False
    digest = hashlib.sha256(doc.content).hexdigest()
    existing = session.execute(
        sa.select(Document).where(
            Document.kind == doc.kind,
            Document.format == doc.format,
            Document.subject == doc.subject,
            Document.sha256 == digest,
        )
    ).scalar_one_or_none()
    if existing is not None:
        return _info(existing), False
    chunks = [doc.content[i : i + chunk_size] for i in range(0, len(doc.content), chunk_size)] or [b""]
    row = Document(
        id=uuid.uuid4().hex,
        kind=doc.kind,
        format=doc.format,
        subject=doc.subject,
        media_type=doc.media_type,
        file_name=doc.file_name,
        size_bytes=len(doc.content),
        sha256=digest,
        page_count=doc.page_count,
        chunk_count=len(chunks),
        created_at=now,
    )
    session.add(row)
    session.flush()
    session.execute(
        sa.insert(DocumentChunk), [{"document_id": row.id, "seq": i, "data": data} for i, data in enumerate(chunks)]
    )
    record_event(
        session,
        type=EVENT_RENDERED,
        subject=f"documents/{row.id}",
        payload=events_pb2.DocumentRendered(
            document=f"documents/{row.id}",
            kind=doc.kind,
            subject=doc.subject,
            sha256=digest,
            format=doc.format,
            size_bytes=len(doc.content),
        ),
    )
    return _info(row), True


def get_document(session: Session, *, document_id: str) -> DocumentInfo | None:
    row = session.get(Document, document_id)
    return _info(row) if row is not None else None


def read_chunks(session: Session, *, document_id: str, from_seq: int, limit: int) -> list[bytes]:
    rows = session.execute(
        sa.select(DocumentChunk.data)
        .where(DocumentChunk.document_id == document_id, DocumentChunk.seq >= from_seq)
        .order_by(DocumentChunk.seq)
        .limit(limit)
    )
    return [r[0] for r in rows]


def list_documents(
    session: Session, *, kind: str = "", subject: str = "", offset: int = 0, limit: int = 50
) -> tuple[list[DocumentInfo], int]:
    q = sa.select(Document)
    count = sa.select(sa.func.count()).select_from(Document)
    if kind:
        q = q.where(Document.kind == kind)
        count = count.where(Document.kind == kind)
    if subject:
        q = q.where(Document.subject == subject)
        count = count.where(Document.subject == subject)
    rows = session.execute(q.order_by(Document.created_at.desc(), Document.id.desc()).offset(offset).limit(limit))
    return [_info(r) for r in rows.scalars()], session.execute(count).scalar_one()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    issuer: str
    key_id: str
    private_key: bytes
    public_key: bytes


def issuer_key(session: Session, *, issuer: str, now: dt.datetime) -> KeyInfo:
    """The issuer's Ed25519 key, generated on first use. Two replicas racing on a first use both insert
    with ON CONFLICT DO NOTHING and then read the one row that won."""
    row = session.get(IssuerKey, issuer)
    if row is None:
        key = signing.generate_key()
        pub = signing.public_raw(key.public_key())
        insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(IssuerKey)
        session.execute(
            insert.values(
                issuer=issuer,
                key_id=signing.key_id(pub),
                private_key=signing.private_raw(key),
                public_key=pub,
                created_at=now,
            ).on_conflict_do_nothing()
        )
        row = session.get_one(IssuerKey, issuer)  # ours or the concurrent writer's
    return KeyInfo(row.issuer, row.key_id, row.private_key, row.public_key)


def public_key(session: Session, *, issuer: str) -> KeyInfo | None:
    row = session.get(IssuerKey, issuer)
    return KeyInfo(row.issuer, row.key_id, b"", row.public_key) if row is not None else None
