"""Repository of the documents service: plain functions taking the session first (run by
`Database.write/read` inside one transaction), the rest keyword-only. Returns plain dataclasses."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bjsv.documents.v1 import events_pb2
from common.auth.scope import ListScope, Owner
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
    owner: Owner = field(
        default_factory=Owner
    )  # who may read it (issue #12); the empty owner: only roles with scope `any`


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
    owner: Owner = field(default_factory=Owner)

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
        Owner(row.owner_district, row.owner_institution, (row.owner_supervisor,) if row.owner_supervisor else ()),
    )


def _owner_columns(owner: Owner) -> dict[str, str]:
    """One supervisor per document: the holder of a badge, the submitter of a record."""
    return {
        "owner_district": owner.district,
        "owner_institution": owner.institution,
        "owner_supervisor": owner.supervisors[0] if owner.supervisors else "",
    }


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
    owner = _owner_columns(doc.owner)
    existing = session.execute(
        sa.select(Document).where(
            Document.kind == doc.kind,
            Document.format == doc.format,
            Document.subject == doc.subject,
            Document.sha256 == digest,
            *(getattr(Document, column) == value for column, value in owner.items()),
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
        **owner,
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


def _visible(limits: ListScope) -> sa.ColumnElement[bool] | None:
    """The caller's scope as a condition (a caller with several roles sees the union); None: everything."""
    conditions = [
        column == value
        for column, value in (
            (Document.owner_district, limits.district),
            (Document.owner_institution, limits.institution),
            (Document.owner_supervisor, limits.supervisor),
        )
        if value is not None
    ]
    return sa.or_(*conditions) if conditions else None


def list_documents(
    session: Session,
    *,
    kind: str = "",
    subject: str = "",
    after: tuple[dt.datetime, str] | None = None,
    limit: int = 50,
    limits: ListScope | None = None,
) -> list[DocumentInfo]:
    """Newest first, keyset-paged on (created_at, id): `after` is the last row of the previous page. The
    scope is a condition of the query, so every page is full and no row is skipped or repeated."""
    q = sa.select(Document)
    if kind:
        q = q.where(Document.kind == kind)
    if subject:
        q = q.where(Document.subject == subject)
    visible = _visible(limits or ListScope())
    if visible is not None:
        q = q.where(visible)
    if after is not None:
        last = sa.tuple_(sa.literal(after[0], Document.created_at.type), sa.literal(after[1], Document.id.type))
        q = q.where(sa.tuple_(Document.created_at, Document.id) < last)
    rows = session.execute(q.order_by(Document.created_at.desc(), Document.id.desc()).limit(limit))
    return [_info(r) for r in rows.scalars()]


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
