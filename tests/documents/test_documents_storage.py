"""Storage of the documents service on SQLite and PostgreSQL: digest, chunks, dedupe, outbox event,
one key per issuer even when two writers race on its first use."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from bjsv.documents.v1 import events_pb2
from bjsv.events.v1 import envelope_pb2
from common.auth.scope import ListScope, Owner
from common.config import Settings
from common.db import Database
from services.documents.storage import models, repository
from services.documents.storage.repository import NewDocument

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "documents" / "storage" / "migrations"
NOW = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def database_of(backend: str, request, tmp_path) -> Database:
    if backend == "sqlite":
        settings = Settings(data_dir=tmp_path)
    else:
        url, prefix = request.getfixturevalue("pg_url")
        settings = Settings(data_dir=tmp_path, database_url=url, db_schema_prefix=prefix)
    return Database(settings, service="documents", metadata=models.Base.metadata, migrations=MIGRATIONS)


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    database = database_of(request.param, request, tmp_path)
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
    rows = db.read_sync(repository.list_documents, subject="badges/R1122A001")
    assert {r.id for r in rows} == {a.id, c.id}
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


D08 = Owner.of("agencies/08", "supervisors/7")
D05 = Owner.of("agencies/05")
FEEDBACK_08 = Owner(district="agencies/08", institution="institutions/1100081001")


def owned(content: bytes, owner: Owner, subject="badges/R1122A001") -> NewDocument:
    return NewDocument("badge", "pdf", subject, "application/pdf", "badge.pdf", content, 2, owner)


def test_the_same_bytes_rendered_for_two_owners_are_two_documents_each_read_back_with_its_owner(db):
    a, _ = db.write_sync(repository.store_document, owned(b"%PDF blank", D08), chunk_size=1000, now=NOW)
    b, created = db.write_sync(repository.store_document, owned(b"%PDF blank", D05), chunk_size=1000, now=NOW)
    assert created and a.id != b.id
    assert db.read_sync(repository.get_document, document_id=a.id).owner == D08
    assert db.read_sync(repository.get_document, document_id=b.id).owner == D05


def test_list_is_filtered_to_the_scope_in_the_query_and_keyset_pages_neither_skip_nor_repeat(db):
    owners = [D08, D05, FEEDBACK_08, Owner()]
    stored = []
    for i in range(12):  # interleaved owners, several documents in the same second
        when = NOW + dt.timedelta(seconds=i // 3)
        info, _ = db.write_sync(
            repository.store_document, owned(b"PDF-%d" % i, owners[i % 4], f"badges/{i}"), chunk_size=1000, now=when
        )
        stored.append(info)

    def pages(limits: ListScope) -> list[str]:
        seen, after = [], None
        while True:
            rows = db.read_sync(repository.list_documents, after=after, limit=2, limits=limits)
            seen += [r.id for r in rows]
            if len(rows) < 2:
                return seen
            after = (rows[-1].created_at, rows[-1].id)

    newest_first = [s.id for s in sorted(stored, key=lambda s: (s.created_at, s.id), reverse=True)]
    assert pages(ListScope()) == newest_first
    own08 = [
        i for i in newest_first if db.read_sync(repository.get_document, document_id=i).owner.district == "agencies/08"
    ]
    assert len(own08) == 6 and pages(ListScope(district="agencies/08")) == own08
    institution = pages(ListScope(institution="institutions/1100081001"))
    assert institution == [s.id for s in stored if s.owner == FEEDBACK_08][::-1]
    assert pages(ListScope(supervisor="supervisors/7")) == [s.id for s in stored if s.owner == D08][::-1]
    assert pages(ListScope(district="agencies/11")) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_keeps_existing_documents_and_their_chunks_and_gives_owners_only_where_known(
    request, backend, tmp_path
):
    """Backfill (issue #12): a district report's name carries its district; any other old document has no
    owner that could be known, so it stays with the roles that see everything."""
    database = database_of(backend, request, tmp_path)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["target_metadata"] = models.Base.metadata
    with database.write_engine.begin() as conn:
        if database.schema is not None:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"'))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002_documents_audit_chain")
        for doc_id, kind, subject in (("r1", "district_report", "reports/08/2026-03-1"), ("b1", "badge", "badges/R1")):
            conn.execute(
                sa.text(
                    "INSERT INTO document (id, kind, format, subject, media_type, file_name, size_bytes, sha256,"
                    " page_count, chunk_count, created_at) VALUES (:id, :kind, 'pdf', :subject, 'application/pdf',"
                    " 'x.pdf', 3, 'abc', 1, 1, :now)"
                ),
                {"id": doc_id, "kind": kind, "subject": subject, "now": NOW},
            )
            conn.execute(
                sa.text("INSERT INTO document_chunk (document_id, seq, data) VALUES (:id, 0, :data)"),
                {"id": doc_id, "data": b"PDF"},
            )
    database.migrate()
    try:
        report = database.read_sync(repository.get_document, document_id="r1")
        badge = database.read_sync(repository.get_document, document_id="b1")
        assert report.owner == Owner(district="agencies/08") and badge.owner == Owner()
        for doc_id in ("r1", "b1"):
            assert database.read_sync(repository.read_chunks, document_id=doc_id, from_seq=0, limit=5) == [b"PDF"]
        assert [
            r.id for r in database.read_sync(repository.list_documents, limits=ListScope(district="agencies/08"))
        ] == ["r1"]
    finally:
        database.dispose()
