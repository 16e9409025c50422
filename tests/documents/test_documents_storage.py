"""Storage of the documents service on SQLite and PostgreSQL: digest, chunks, dedupe, outbox event,
one key per issuer even when two writers race on its first use."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from bjsv.documents.v1 import events_pb2
from bjsv.events.v1 import envelope_pb2
from common.config import Settings
from common.db import Database
from services.documents.storage import models, repository
from services.documents.storage.repository import NewDocument

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "documents" / "storage" / "migrations"
NOW = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path):
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path)
    else:
        url, prefix = request.getfixturevalue("pg_url")
        settings = Settings(data_dir=tmp_path, database_url=url, db_schema_prefix=prefix)
    database = Database(settings, service="documents", metadata=models.Base.metadata, migrations=MIGRATIONS)
    database.migrate()
    database.migrate()  # idempotent
    yield database
    database.dispose()


def doc(content: bytes, subject="badges/R1122A001") -> NewDocument:
    return NewDocument("badge", "pdf", subject, "application/pdf", "badge.pdf", content, 2)


def test_document_is_stored_in_chunks_with_its_digest_and_a_rendered_event(db):
    content = bytes(range(256)) * 1000
    info, created = db.write_sync(repository.store_document, doc(content), chunk_size=10_000, now=NOW)
    assert created and info.sha256 == hashlib.sha256(content).hexdigest() and info.chunk_count == 26
    chunks = db.read_sync(repository.read_chunks, document_id=info.id, from_seq=0, limit=100)
    assert b"".join(chunks) == content
    assert db.read_sync(repository.read_chunks, document_id=info.id, from_seq=25, limit=5) == [content[250_000:]]
    with db.read_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT nats_subject, envelope FROM outbox")).all()
    assert [r[0] for r in rows] == ["bjsv.documents.document.rendered"]
    env = envelope_pb2.EventEnvelope.FromString(rows[0][1])
    payload = events_pb2.DocumentRendered()
    env.payload.Unpack(payload)
    assert (env.subject, payload.document, payload.sha256, payload.kind, payload.subject) == (
        info.name,
        info.name,
        info.sha256,
        "badge",
        "badges/R1122A001",
    )


def test_identical_rerender_is_not_stored_twice_and_publishes_nothing(db):
    a, created_a = db.write_sync(repository.store_document, doc(b"%PDF same"), chunk_size=1000, now=NOW)
    b, created_b = db.write_sync(repository.store_document, doc(b"%PDF same"), chunk_size=1000, now=NOW)
    assert created_a and not created_b and a.id == b.id
    c, created_c = db.write_sync(repository.store_document, doc(b"%PDF changed"), chunk_size=1000, now=NOW)
    assert created_c and c.id != a.id
    rows, total = db.read_sync(repository.list_documents, subject="badges/R1122A001")
    assert total == 2 and {r.id for r in rows} == {a.id, c.id}
    with db.read_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one() == 2


def test_an_event_handled_once_stores_nothing_the_second_time(db):
    first, _ = db.write_sync(
        repository.store_document,
        doc(b"%PDF x", "records/1"),
        chunk_size=1000,
        now=NOW,
        processed=("documents-record-submitted", "e1"),
    )
    again, created = db.write_sync(
        repository.store_document,
        doc(b"%PDF y", "records/1"),
        chunk_size=1000,
        now=NOW,
        processed=("documents-record-submitted", "e1"),
    )
    assert first is not None and again is None and not created


def test_each_issuer_gets_exactly_one_key_even_when_first_uses_race(db):
    results = []

    def first_use():
        results.append(db.write_sync(repository.issuer_key, issuer="institutions/1100012001", now=NOW))

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.private_key for r in results}) == 1 and len({r.key_id for r in results}) == 1
    other = db.write_sync(repository.issuer_key, issuer="agencies/A", now=NOW)
    assert other.key_id != results[0].key_id
    public = db.read_sync(repository.public_key, issuer="agencies/A")
    assert public.public_key == other.public_key and public.private_key == b""
    assert db.read_sync(repository.public_key, issuer="agencies/99") is None
